"""SMTP adapter: sends multipart/alternative (text + HTML) messages with aiosmtplib."""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import re
import secrets
import time
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from ksbb_notifier.domain.emails import RenderedEmail

#: A connection idle longer than this is closed before the next send instead of reused: well below the
#: idle timeouts of SMTP servers (minutes), so a reused connection is one the server still keeps.
REUSE_IDLE_SECONDS = 10.0
#: How long a goodbye to an idle connection may take before it is simply closed.
QUIT_SECONDS = 2.0
#: Header lines are folded to this length (RFC 5322 recommends 78 characters).
HEADER_LINE = 78
#: UTF-8 bytes per RFC 2047 word: 56 characters of base64, 68 with its markers, so "Subject: " and the first
#: word fit one 78-character line too (readers join adjacent words without the space between them).
WORD_BYTES = 42
#: Line breaks inside a header value would start a new header (injection): they become a space.
LINE_BREAKS = re.compile(r"[\r\n]+")
#: One bare address (local@domain): nothing a header or an SMTP command would read as more than that.
MAILBOX = re.compile(r"[^@\s<>()\[\],;:\\\"]+@[^@\s<>()\[\],;:\\\"]+")


def address_header(name: str, value: str) -> bytes:
    """One address header line, encoded by the standard library (display names may need RFC 2047)."""
    # An address beyond ASCII can only be sent as UTF-8 (SMTPUTF8); a display name is encoded instead.
    message = EmailMessage(policy=policy.SMTP if parseaddr(value)[1].isascii() else policy.SMTPUTF8)
    message[name] = value
    return message.as_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n"


def subject_header(subject: str) -> bytes:
    """The Subject line: as it is when short and ASCII, else RFC 2047 words of UTF-8, one per folded line."""
    subject = LINE_BREAKS.sub(" ", subject)
    if subject.isascii() and len("Subject: ") + len(subject) <= HEADER_LINE:
        return f"Subject: {subject}\r\n".encode("ascii")
    data, words, start = subject.encode("utf-8"), [], 0
    while start < len(data):
        end = min(start + WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # never between the bytes of one character
            end -= 1
        words.append(b"=?utf-8?b?" + binascii.b2a_base64(data[start:end], newline=False) + b"?=")
        start = end
    return b"Subject: " + b"\r\n ".join(words) + b"\r\n"


def text_part(subtype: str, text: str) -> bytes:
    """A UTF-8 text part, quoted-printable (readable where ASCII, lines within 76 characters)."""
    body = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode("ascii")
        + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + body.replace(b"\n", b"\r\n")
        + (b"" if body.endswith(b"\n") else b"\r\n")
    )


def mime_message(*, from_header: bytes, to: str, email: RenderedEmail, message_id: str, date: str) -> bytes:
    """The whole multipart/alternative message (text first, HTML preferred by readers that show it).

    Built directly rather than through `email.message.EmailMessage`, whose header parsing and folding
    cost a few milliseconds per e-mail (the notifier sends three for every pledge). The boundary starts
    with "=_", which quoted-printable bodies can never contain.
    """
    if not MAILBOX.fullmatch(to):
        raise ValueError(f"not one e-mail address (local@domain): {to!r}")
    boundary = f"=_ksbb_{secrets.token_hex(12)}".encode("ascii")
    to_header = f"To: {to}\r\n".encode("ascii") if to.isascii() else address_header("To", to)
    return b"".join(
        (
            from_header,
            to_header,
            subject_header(email.subject),
            f"Date: {date}\r\nMessage-ID: {message_id}\r\nContent-Language: id, en\r\n".encode("ascii"),
            b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="' + boundary + b'"\r\n\r\n',
            b"--" + boundary + b"\r\n",
            text_part("plain", email.text),
            b"--" + boundary + b"\r\n",
            text_part("html", email.html),
            b"--" + boundary + b"--\r\n",
        )
    )


class SmtpMailer:
    """Sends one e-mail per call over SMTP; raises on failure so the caller can retry.

    E-mails sent one after another share one connection (a connection, greeting and login per e-mail
    cost more than the message itself); any failure closes it, so the next send starts a fresh one.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = False,
        timeout: float = 15.0,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._start_tls = start_tls
        self._timeout = timeout
        self._from_header = address_header("From", sender)
        self._envelope_sender = parseaddr(sender)[1]
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._lock = asyncio.Lock()

    async def send(self, to: str, email: RenderedEmail, *, message_id: str) -> None:
        """Deliver one message to the SMTP server."""
        message = mime_message(
            from_header=self._from_header,
            to=to,
            email=email,
            message_id=make_msgid(idstring=message_id, domain="ksbb.local"),
            date=formatdate(localtime=False),
        )
        # An address beyond ASCII needs the server's SMTPUTF8 (RFC 6531), as `send_message` would ask.
        options = [] if to.isascii() and self._envelope_sender.isascii() else ["SMTPUTF8"]
        async with self._lock:
            client = await self._connected()
            try:
                await client.sendmail(self._envelope_sender, [to], message, mail_options=options)
            except BaseException:
                await self._drop(polite=False)  # its state is unknown: no goodbye that could hang
                raise
            self._last_used = time.monotonic()

    async def close(self) -> None:
        """Close the kept connection, if any."""
        async with self._lock:
            await self._drop(polite=True)

    async def _connected(self) -> aiosmtplib.SMTP:
        """The kept connection if it is open and was used recently, else a new one."""
        client = self._client
        if client is not None and client.is_connected and time.monotonic() - self._last_used < REUSE_IDLE_SECONDS:
            return client
        await self._drop(polite=True)
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            start_tls=self._start_tls,
            timeout=self._timeout,
        )
        await client.connect()
        self._client = client
        return client

    async def _drop(self, *, polite: bool) -> None:
        """Forget the kept connection; `polite`: say goodbye first (briefly) if it is still open."""
        client, self._client = self._client, None
        if client is None:
            return
        if polite and client.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.quit(), timeout=QUIT_SECONDS)
        client.close()
