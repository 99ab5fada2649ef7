"""E-mail use cases: queue the e-mails events cause (idempotently), then render and send due ones with retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ksbb_kit.ids import derived_id
from ksbb_kit.wakeup import woken

from ksbb_notifier.app.observability import EMAIL_SENDS
from ksbb_notifier.app.ports import Clock, EmailQueue, MailSender, ReplicaStore
from ksbb_notifier.domain.emails import RenderedEmail, render
from ksbb_notifier.domain.endpoints import Endpoint
from ksbb_notifier.domain.errors import ContactUnknown
from ksbb_notifier.domain.mailing import (
    Contact,
    MailPlan,
    QueuedEmail,
    after_failed_send,
    endpoint_disabled_mail,
    is_last_try,
    needs_handover_contact,
)
from ksbb_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)
#: E-mails leased per pass: one claim, one read of contacts and of names, one group of outcome writes for all.
MAIL_BATCH = 20
#: E-mails queued while the sender runs go to it directly, leased, up to this many waiting; beyond that
#: they wait in the queue for a claim like any other (memory stays bounded when SMTP is slow).
HANDED_MAX = 200


class Mailer:
    """Queues e-mails idempotently and sends due ones in batches, retrying on the e-mail schedule."""

    def __init__(
        self,
        queue: EmailQueue,
        replicas: ReplicaStore,
        sender: MailSender,
        clock: Clock,
        settings: NotifierSettings,
    ) -> None:
        self._queue = queue
        self._replicas = replicas
        self._sender = sender
        self._clock = clock
        self._schedule = settings.email_retry_schedule_seconds
        self._sweep_seconds = settings.dispatch_sweep_seconds
        self._send_timeout = timedelta(seconds=settings.smtp_timeout_seconds)
        self._lease = timedelta(seconds=settings.smtp_timeout_seconds + 30)
        self._wakeup = asyncio.Event()
        #: Whether `serve` runs: only then are new e-mails handed to it at queueing time.
        self._serving = False
        #: E-mails queued leased to this sender (with their lease's end), to send without a claim.
        self._handed: deque[tuple[QueuedEmail, datetime]] = deque()
        #: Whether the next pass must look for due e-mails (a pass after a hand-off alone need not).
        self._poll_asked = True

    # -- queueing --------------------------------------------------------------------------------

    async def queue_for_event(self, plan: MailPlan, event_id: str) -> int:
        """Queue a plan's e-mails; their ids derive from the event, so a redelivered event adds none."""
        queued = 0
        for to in plan.addressees:
            email_id = derived_id("eml", event_id, to.kind, to.to_kind, to.to_id)
            queued += await self.enqueue(email_id, to.kind, to.to_kind, to.to_id, plan.context)
        return queued

    async def queue_for_events(self, plans: Sequence[tuple[MailPlan, str]]) -> int:
        """`queue_for_event` for many events at once (one write). While the sender runs here, the new e-mails
        are stored leased to it and handed over: it sends them with no query and no claim."""
        now = self._clock.now()
        emails = [
            QueuedEmail(
                id=derived_id("eml", event_id, to.kind, to.to_kind, to.to_id), kind=to.kind, to_kind=to.to_kind,
                to_id=to.to_id, context=plan.context, status="pending", attempts=0, next_attempt_at=now,
                created_at=now,
            )
            for plan, event_id in plans
            for to in plan.addressees
        ]
        if not emails:
            return 0
        lease_until = now + self._lease if self._serving and len(self._handed) < HANDED_MAX else None
        new = await self._queue.add_many(emails, lease_until=lease_until)
        if lease_until is not None:
            self._handed.extend((email, lease_until) for email in new)
            if new:
                self._wakeup.set()
        elif new:
            self.wake()
        return len(new)

    async def endpoint_disabled(self, endpoint: Endpoint, reason: str) -> None:
        """Tell the endpoint's organisation that its endpoint was disabled (once per endpoint version)."""
        plan = endpoint_disabled_mail(endpoint.id, endpoint.organisation_id, endpoint.url, reason)
        for to in plan.addressees:
            email_id = derived_id("eml", endpoint.id, to.kind, str(endpoint.version))
            await self.enqueue(email_id, to.kind, to.to_kind, to.to_id, plan.context)

    async def enqueue(self, email_id: str, kind: str, to_kind: str, to_id: str, context: dict[str, Any]) -> bool:
        """Store one e-mail to send (same id twice = stored once); True when newly queued."""
        now = self._clock.now()
        email = QueuedEmail(
            id=email_id,
            kind=kind,
            to_kind=to_kind,
            to_id=to_id,
            context=context,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        inserted = await self._queue.add(email)
        if inserted:
            self.wake()
        return inserted

    # -- sending ---------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due e-mails and send them soon."""
        self._poll_asked = True
        self._wakeup.set()

    async def serve(self) -> None:
        """Send until cancelled: handed-over e-mails at once, due ones after enqueues and on a periodic sweep."""
        self._serving = True
        try:
            while True:
                self._wakeup.clear()
                poll, self._poll_asked = self._poll_asked, False
                try:
                    await self.run_due(poll=poll)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("e-mail pass failed; will retry")
                if not await woken(self._wakeup, self._sweep_seconds):
                    self._poll_asked = True
        finally:
            self._serving = False
            await self._hand_back()
            with contextlib.suppress(Exception):
                await self._sender.close()

    async def run_due(self, *, poll: bool = True) -> int:
        """Send the handed-over e-mails, then (with `poll`) every other e-mail due now; how many were handled."""
        handled = 0
        while self._handed:
            batch = [self._handed.popleft() for _ in range(min(MAIL_BATCH, len(self._handed)))]
            handled += len(batch)
            await self._send_batch([email for email, _ in batch], self._clock.now(), min(u for _, u in batch))
        while poll:
            now = self._clock.now()
            lease_until = now + self._lease
            emails = await self._queue.claim_due_many(now, lease_until, MAIL_BATCH)
            if not emails:
                return handled
            handled += len(emails)
            await self._send_batch(emails, now, lease_until)
        return handled

    async def _hand_back(self) -> None:
        """Release handed-over e-mails not sent yet, so another instance takes them at once (not after the lease)."""
        handed: list[tuple[QueuedEmail, dict[str, Any]]] = [(email, {}) for email, _ in self._handed]
        self._handed.clear()
        with contextlib.suppress(Exception):
            await self._queue.settle_many(handed)

    async def sweep_finished(self, cutoff: datetime) -> int:
        """Forget sent, skipped and failed e-mails created before `cutoff`."""
        return await self._queue.sweep_finished(cutoff)

    async def _send_batch(self, emails: Sequence[QueuedEmail], claimed_at: datetime, lease_until: datetime) -> None:
        """Send leased e-mails one after another (one connection), then write every outcome at once.

        Contacts and recipient names for the whole batch come from one read each. An e-mail whose turn
        comes too late to finish within its lease is handed back unsent (due now), so no other instance
        takes over an e-mail this one may still be sending.
        """
        lookups = await self._lookups(emails)
        settled: list[tuple[QueuedEmail, dict[str, Any]]] = []
        for email in emails:
            if self._clock.now() + self._send_timeout > lease_until:
                settled.append((email, {}))  # released unchanged: due again at once
                continue
            settled.append((email, await self._send_one(email, claimed_at, lookups)))
        await self._queue.settle_many(settled)

    async def _lookups(self, emails: Sequence[QueuedEmail]) -> Lookups:
        """The contacts and recipient names the batch's e-mails need (one read each)."""
        recipient_ids = [r for r in (e.context.get("recipient_id") for e in emails) if isinstance(r, str)]
        contacts = await self._replicas.contacts([*(e.to_id for e in emails), *recipient_ids])
        names = await self._replicas.recipient_names(recipient_ids)
        return Lookups(contacts, names)

    async def _send_one(self, email: QueuedEmail, claimed_at: datetime, lookups: Lookups) -> dict[str, Any]:
        """Send one leased e-mail; the changes that record the outcome."""
        attempts = email.attempts + 1
        try:
            address, context = self._resolve(email, lookups, last_try=is_last_try(attempts, self._schedule))
            if address is None:
                EMAIL_SENDS.labels(outcome="skipped").inc()
                return {"status": "skipped", "skipped_reason": "no_email_address", "attempts": attempts}
            rendered: RenderedEmail = render(email.kind, context)
            await self._sender.send(address, rendered, message_id=email.id)
        except Exception as exc:  # SMTP errors, a contact not yet replicated, a template bug
            error = f"{type(exc).__name__}: {exc}"
            changes = after_failed_send(
                attempts, self._schedule, claimed_at=claimed_at, now=self._clock.now(), error=error
            )
            EMAIL_SENDS.labels(outcome="failed").inc()
            log.warning("e-mail %s attempt %d failed: %s", email.id, attempts, changes["last_error"])
            return changes
        EMAIL_SENDS.labels(outcome="sent").inc()
        return {"status": "sent", "sent_at": self._clock.now(), "attempts": attempts, "subject": rendered.subject}

    @staticmethod
    def _resolve(email: QueuedEmail, lookups: Lookups, *, last_try: bool) -> tuple[str | None, dict[str, Any]]:
        """The address and full template context, from the replicas as they were read for this batch."""
        context = dict(email.context)
        contact = lookups.contacts.get(email.to_id)
        if contact is None:
            raise ContactUnknown(f"no contact for {email.to_kind} {email.to_id} yet")
        context["name"] = contact.greeting_name
        recipient_id = context.get("recipient_id")
        if recipient_id and "recipient_name" not in context:
            context["recipient_name"] = lookups.recipient_names.get(recipient_id, recipient_id)
        if needs_handover_contact(email.kind):
            found = lookups.contacts.get(recipient_id) if recipient_id else None
            recipient_contact = found if found is not None and found.kind == "recipient" else None
            if recipient_contact is None and not last_try:
                raise ContactUnknown(f"recipient {recipient_id}'s contact not replicated yet")
            context["contact"] = recipient_contact.handover() if recipient_contact else None
        return contact.email, context


@dataclass(frozen=True)
class Lookups:
    """What a batch of e-mails reads from the replicas: contacts by owner id, recipient names by id."""

    contacts: dict[str, Contact]
    recipient_names: dict[str, str]


class MailBatch:
    """Collects the e-mails a batch of events causes and queues them at once (`Mailer.queue_for_events`)."""

    def __init__(self, mailer: Mailer) -> None:
        self._mailer = mailer
        self._pending: list[tuple[MailPlan, str]] = []

    async def queue_for_event(self, plan: MailPlan, event_id: str) -> int:
        """Note an event's e-mails to queue with the rest of its batch."""
        self._pending.append((plan, event_id))
        return 0

    async def flush(self) -> int:
        """Queue every noted e-mail; how many were new."""
        pending, self._pending = self._pending, []
        return await self._mailer.queue_for_events(pending)
