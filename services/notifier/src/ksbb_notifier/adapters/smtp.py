"""SMTP adapter: sends multipart/alternative (text + HTML) messages with aiosmtplib."""

from __future__ import annotations

import asyncio
import contextlib
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from ksbb_notifier.domain.emails import RenderedEmail

#: A connection idle longer than this is closed before the next send instead of reused: well below the
#: idle timeouts of SMTP servers (minutes), so a reused connection is one the server still keeps.
REUSE_IDLE_SECONDS = 10.0
#: How long a goodbye to an idle connection may take before it is simply closed.
QUIT_SECONDS = 2.0


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
        self._sender = sender
        self._username = username
        self._password = password
        self._start_tls = start_tls
        self._timeout = timeout
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._lock = asyncio.Lock()

    async def send(self, to: str, email: RenderedEmail, *, message_id: str) -> None:
        """Deliver one message to the SMTP server."""
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = email.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(idstring=message_id, domain="ksbb.local")
        message["Content-Language"] = "id, en"
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        async with self._lock:
            client = await self._connected()
            try:
                await client.send_message(message)
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
