"""Durable e-mail outbox: e-mails are stored first, rendered and sent later with retries.

Addresses and confidential contact details are looked up at send time from the contact replicas, so
a contact that arrives after the pledge event still gets its e-mail and an erased contact gets none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from ksbb_kit.clock import Clock

from ksbb_notifier.adapters.store import EPOCH, NotifierStore
from ksbb_notifier.domain.emails import RenderedEmail, render
from ksbb_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)


class MailTransport(Protocol):
    """Something that sends one rendered e-mail."""

    async def send(self, to: str, email: RenderedEmail, *, message_id: str) -> None:
        """Send or raise."""
        ...


class ContactUnknown(Exception):
    """The addressee's contact has not arrived (yet)."""


class Mailer:
    """Queues e-mails idempotently and sends due ones, retrying on the e-mail schedule."""

    def __init__(
        self, store: NotifierStore, transport: MailTransport, clock: Clock, settings: NotifierSettings
    ) -> None:
        self._store = store
        self._transport = transport
        self._clock = clock
        self._settings = settings
        self._wakeup = asyncio.Event()
        self._lease = timedelta(seconds=settings.smtp_timeout_seconds + 30)

    def wake(self) -> None:
        """Send soon."""
        self._wakeup.set()

    async def enqueue(self, email_id: str, kind: str, to_kind: str, to_id: str, context: dict[str, Any]) -> bool:
        """Store one e-mail to send (same id twice = stored once); True when newly queued."""
        now = self._clock.now()
        inserted = await self._store.insert_ignoring_duplicates(
            self._store.emails,
            [
                {
                    "_id": email_id,
                    "kind": kind,
                    "to_kind": to_kind,
                    "to_id": to_id,
                    "context": context,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "leased_until": EPOCH,
                    "created_at": now,
                }
            ],
        )
        if inserted:
            self.wake()
        return bool(inserted)

    async def serve(self) -> None:
        """Send until cancelled, woken after enqueues plus a periodic sweep."""
        while True:
            self._wakeup.clear()
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("e-mail pass failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._settings.dispatch_sweep_seconds)

    async def run_due(self) -> int:
        """Send every e-mail that is due now; returns how many were handled."""
        handled = 0
        while True:
            now = self._clock.now()
            email = await self._store.claim(self._store.emails, now, now + self._lease)
            if email is None:
                return handled
            handled += 1
            await self._send_one(email, now)

    async def _send_one(self, email: dict[str, Any], now: datetime) -> None:
        emails = self._store.emails
        guard = {"_id": email["_id"], "lease_token": email["lease_token"]}
        attempts = email.get("attempts", 0) + 1
        try:
            last_try = attempts >= len(self._settings.email_retry_schedule_seconds)
            address, context = await self._resolve(email, last_try=last_try)
            if address is None:
                await emails.update_one(
                    guard,
                    {
                        "$set": {
                            "status": "skipped",
                            "skipped_reason": "no_email_address",
                            "leased_until": EPOCH,
                            "attempts": attempts,
                        }
                    },
                )
                return
            rendered = render(email["kind"], context)
            await self._transport.send(address, rendered, message_id=email["_id"])
        except Exception as exc:  # SMTP errors, a contact not yet replicated, a template bug
            error = f"{type(exc).__name__}: {exc}"[:500]
            schedule = self._settings.email_retry_schedule_seconds
            if attempts >= len(schedule):
                changes: dict[str, Any] = {"status": "failed", "failed_at": now}
            else:
                changes = {"next_attempt_at": self._clock.now() + timedelta(seconds=schedule[attempts])}
            await emails.update_one(
                guard, {"$set": {**changes, "last_error": error, "attempts": attempts, "leased_until": EPOCH}}
            )
            log.warning("e-mail %s attempt %d failed: %s", email["_id"], attempts, error)
            return
        await emails.update_one(
            guard,
            {
                "$set": {
                    "status": "sent",
                    "sent_at": self._clock.now(),
                    "attempts": attempts,
                    "leased_until": EPOCH,
                    "subject": rendered.subject,
                }
            },
        )

    async def _resolve(self, email: dict[str, Any], *, last_try: bool) -> tuple[str | None, dict[str, Any]]:
        """The address and full template context, from the replicas as they are now."""
        contacts = self._store.contacts
        context = dict(email["context"])
        contact = await contacts.find_one({"_id": email["to_id"]})
        if contact is None:
            raise ContactUnknown(f"no contact for {email['to_kind']} {email['to_id']} yet")
        context["name"] = contact.get("name") or contact.get("contact_name") or "Bapak/Ibu"
        recipient_id = context.get("recipient_id")
        if recipient_id and "recipient_name" not in context:
            recipient = await self._store.recipients.find_one({"_id": recipient_id}, {"name": 1})
            context["recipient_name"] = recipient["name"] if recipient else recipient_id
        if email["kind"] == "donor_pledge_created":
            recipient_contact = await contacts.find_one({"_id": recipient_id, "kind": "recipient"})
            if recipient_contact is None and not last_try:
                raise ContactUnknown(f"recipient {recipient_id}'s contact not replicated yet")
            context["contact"] = (
                {k: recipient_contact.get(k) for k in ("contact_name", "phone", "email", "street_address")}
                if recipient_contact
                else None
            )
        return contact.get("email"), context
