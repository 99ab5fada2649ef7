"""E-mail use cases: queue the e-mails events cause (idempotently), then render and send due ones with retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ksbb_kit.ids import derived_id

from ksbb_notifier.app.observability import EMAIL_SENDS
from ksbb_notifier.app.ports import Clock, EmailQueue, MailSender, ReplicaStore
from ksbb_notifier.domain.emails import RenderedEmail, render
from ksbb_notifier.domain.endpoints import Endpoint
from ksbb_notifier.domain.errors import ContactUnknown
from ksbb_notifier.domain.mailing import (
    MailPlan,
    QueuedEmail,
    after_failed_send,
    endpoint_disabled_mail,
    is_last_try,
    needs_handover_contact,
)
from ksbb_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)


class Mailer:
    """Queues e-mails idempotently and sends due ones, retrying on the e-mail schedule."""

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
        self._lease = timedelta(seconds=settings.smtp_timeout_seconds + 30)
        self._wakeup = asyncio.Event()

    # -- queueing --------------------------------------------------------------------------------

    async def queue_for_event(self, plan: MailPlan, event_id: str) -> int:
        """Queue a plan's e-mails; their ids derive from the event, so a redelivered event adds none."""
        queued = 0
        for to in plan.addressees:
            email_id = derived_id("eml", event_id, to.kind, to.to_kind, to.to_id)
            queued += await self.enqueue(email_id, to.kind, to.to_kind, to.to_id, plan.context)
        return queued

    async def queue_for_events(self, plans: Sequence[tuple[MailPlan, str]]) -> int:
        """`queue_for_event` for many events at once (one write)."""
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
        queued = await self._queue.add_many(emails)
        if queued:
            self.wake()
        return queued

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
        """Send soon."""
        self._wakeup.set()

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
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._sweep_seconds)

    async def run_due(self) -> int:
        """Send every e-mail that is due now; returns how many were handled."""
        handled = 0
        while True:
            now = self._clock.now()
            email = await self._queue.claim_due(now, now + self._lease)
            if email is None:
                return handled
            handled += 1
            await self._send_one(email, now)

    async def sweep_finished(self, cutoff: datetime) -> int:
        """Forget sent, skipped and failed e-mails created before `cutoff`."""
        return await self._queue.sweep_finished(cutoff)

    async def _send_one(self, email: QueuedEmail, claimed_at: datetime) -> None:
        attempts = email.attempts + 1
        try:
            address, context = await self._resolve(email, last_try=is_last_try(attempts, self._schedule))
            if address is None:
                await self._queue.settle(
                    email, {"status": "skipped", "skipped_reason": "no_email_address", "attempts": attempts}
                )
                EMAIL_SENDS.labels(outcome="skipped").inc()
                return
            rendered: RenderedEmail = render(email.kind, context)
            await self._sender.send(address, rendered, message_id=email.id)
        except Exception as exc:  # SMTP errors, a contact not yet replicated, a template bug
            error = f"{type(exc).__name__}: {exc}"
            changes = after_failed_send(
                attempts, self._schedule, claimed_at=claimed_at, now=self._clock.now(), error=error
            )
            await self._queue.settle(email, changes)
            EMAIL_SENDS.labels(outcome="failed").inc()
            log.warning("e-mail %s attempt %d failed: %s", email.id, attempts, changes["last_error"])
            return
        await self._queue.settle(
            email,
            {"status": "sent", "sent_at": self._clock.now(), "attempts": attempts, "subject": rendered.subject},
        )
        EMAIL_SENDS.labels(outcome="sent").inc()

    async def _resolve(self, email: QueuedEmail, *, last_try: bool) -> tuple[str | None, dict[str, Any]]:
        """The address and full template context, from the replicas as they are now."""
        context = dict(email.context)
        contact = await self._replicas.contact(email.to_id)
        if contact is None:
            raise ContactUnknown(f"no contact for {email.to_kind} {email.to_id} yet")
        context["name"] = contact.greeting_name
        recipient_id = context.get("recipient_id")
        if recipient_id and "recipient_name" not in context:
            name = await self._replicas.recipient_name(recipient_id)
            context["recipient_name"] = name if name is not None else recipient_id
        if needs_handover_contact(email.kind):
            recipient_contact = await self._replicas.contact(recipient_id, kind="recipient") if recipient_id else None
            if recipient_contact is None and not last_try:
                raise ContactUnknown(f"recipient {recipient_id}'s contact not replicated yet")
            context["contact"] = recipient_contact.handover() if recipient_contact else None
        return contact.email, context


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
