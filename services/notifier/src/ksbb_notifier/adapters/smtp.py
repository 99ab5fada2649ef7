"""SMTP adapter: sends multipart/alternative (text + HTML) messages with aiosmtplib."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from ksbb_notifier.domain.emails import RenderedEmail


class SmtpMailer:
    """Sends one e-mail per call over SMTP; raises on failure so the caller can retry."""

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
        await aiosmtplib.send(
            message,
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            start_tls=self._start_tls,
            timeout=self._timeout,
        )
