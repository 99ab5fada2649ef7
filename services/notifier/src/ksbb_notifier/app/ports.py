"""What the notifier's use cases need from the outside world; `adapters/` implements each of these."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, Protocol

from ksbb_contracts import Event

from ksbb_notifier.domain.deliveries import (
    AttemptOutcome,
    AttemptResult,
    Delivery,
    DueDelivery,
    Message,
    WebhookRequest,
)
from ksbb_notifier.domain.emails import RenderedEmail
from ksbb_notifier.domain.endpoints import Endpoint, SigningSecret
from ksbb_notifier.domain.mailing import Contact, QueuedEmail


class Clock(Protocol):
    """Tells the current UTC time (injectable, so schedules are tested without sleeping)."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


# -- stores --------------------------------------------------------------------------------------


class EndpointStore(Protocol):
    """Webhook endpoints; changes are guarded by the endpoint's version."""

    async def add(self, endpoint: Endpoint) -> None:
        """Store a new endpoint."""
        ...

    async def get(self, endpoint_id: str) -> Endpoint | None:
        """One endpoint, or None."""
        ...

    async def get_many(self, endpoint_ids: Sequence[str]) -> list[Endpoint]:
        """The endpoints among these ids that exist (one read)."""
        ...

    async def owned_by(self, *, organisation_id: str | None, any_owner: bool) -> list[Endpoint]:
        """Endpoints of one owner (`None` = admins' own), or of every owner; oldest first."""
        ...

    async def enabled_for(self, organisation_id: str | None, *, programme_wide: bool) -> list[Endpoint]:
        """Enabled endpoints that may receive an event of this organisation (before filters)."""
        ...

    async def update(self, endpoint_id: str, version: int, changes: dict[str, Any]) -> Endpoint | None:
        """Apply changes if the endpoint still has `version`; the updated endpoint, or None if it moved on."""
        ...

    async def replace_secrets(
        self, endpoint_id: str, version: int, secrets: tuple[SigningSecret, ...], now: datetime
    ) -> bool:
        """Store rotated secrets if the endpoint still has `version`."""
        ...

    async def delete(self, endpoint_id: str) -> None:
        """Remove an endpoint."""
        ...

    async def disable(self, endpoint_id: str, reason: str, now: datetime, events: Sequence[Event]) -> Endpoint | None:
        """Disable an enabled endpoint with its events in the same write; None if it was not enabled."""
        ...

    async def start_failure_streak(self, endpoint_id: str, now: datetime) -> Endpoint | None:
        """Start the failure streak unless one is running; the endpoint as it is now."""
        ...

    async def end_failure_streak(self, endpoint_id: str) -> None:
        """End the failure streak."""
        ...


class DeliveryQueue(Protocol):
    """The delivery loop's side of messages and deliveries: find due work, lease it, record attempts.

    Leases keep several notifier instances from attempting the same delivery at once.
    """

    async def message(self, message_id: str) -> Message | None:
        """One message, or None."""
        ...

    async def messages(self, message_ids: Sequence[str]) -> list[Message]:
        """The messages among these ids that exist (one read)."""
        ...

    async def due(self, now: datetime, limit: int, exclude_endpoints: Sequence[str]) -> list[DueDelivery]:
        """Pending, unleased deliveries due now, oldest first, skipping saturated endpoints."""
        ...

    async def claim(self, delivery_ids: Sequence[str], now: datetime, lease_until: datetime) -> list[Delivery]:
        """Lease those still due and unleased; the ones this call won (each carries its lease token)."""
        ...

    async def release(self, delivery: Delivery) -> None:
        """Give a lease back without changing anything else (shutdown)."""
        ...

    async def postpone(self, delivery: Delivery, until: datetime) -> None:
        """Hand a leased delivery back, due again at `until`, without counting an attempt."""
        ...

    async def record_attempt(self, delivery: Delivery, outcome: AttemptOutcome, *, keep_attempts: int) -> None:
        """Store one attempt's outcome (log entry, state, events) and release the lease."""
        ...

    async def settle(self, delivery: Delivery, changes: dict[str, Any]) -> None:
        """Change a leased delivery without an attempt and release the lease."""
        ...


class DeliveryLog(Protocol):
    """The API and fan-out side of messages and deliveries."""

    async def add_message(self, message: Message) -> None:
        """Store a message; one that exists already is left alone."""
        ...

    async def add_messages(self, messages: Sequence[Message]) -> None:
        """Store messages in one write; ones that exist already are left alone."""
        ...

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Store new deliveries; existing ones are left alone. How many were new."""
        ...

    async def add_fan_out(
        self,
        messages: Sequence[Message],
        deliveries: Sequence[Delivery],
        *,
        lease_until: datetime | None = None,
        leased_ids: AbstractSet[str] = frozenset(),
    ) -> list[Delivery]:
        """Store messages and their new deliveries (the messages first; those in `leased_ids` leased to the
        caller until `lease_until`); the deliveries that were new."""
        ...

    async def page(
        self,
        endpoint_id: str,
        *,
        status: str | None,
        event_type: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first, strictly before a (created_at, id) position."""
        ...

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """One delivery of one endpoint."""
        ...

    async def change(self, endpoint_id: str, delivery_id: str, changes: dict[str, Any]) -> Delivery | None:
        """Change one delivery of one endpoint; the changed delivery, or None if there is none."""
        ...

    async def requeue_failed(self, endpoint_id: str, since: datetime, changes: dict[str, Any]) -> int:
        """Requeue an endpoint's failed deliveries created at or after `since`; how many."""
        ...

    async def sweep_finished(self, cutoff: datetime) -> dict[str, int]:
        """Delete finished deliveries and messages nothing needs any more, created before `cutoff`."""
        ...


class ReplicaStore(Protocol):
    """Replicas of other services' public facts and confidential contacts."""

    async def keep_organisation(self, organisation_id: str, fields: dict[str, Any], version: int) -> bool:
        """Store an organisation snapshot unless a newer (or the same) version is there already."""
        ...

    async def keep_recipient(self, recipient_id: str, fields: dict[str, Any], version: int) -> bool:
        """Store a recipient snapshot unless a newer (or the same) version is there already."""
        ...

    async def snapshot_held(self, kind: str, owner_id: str) -> dict[str, Any] | None:
        """The `version` and `state_digest` of an `organisation` or `recipient` replica (None: none held)."""
        ...

    async def replace_snapshot(
        self, kind: str, owner_id: str, held: dict[str, Any] | None, fields: dict[str, Any]
    ) -> bool:
        """Set a replica's fields if it still holds what was read (`held`); False: it changed meanwhile."""
        ...

    async def recipient_kinds(self, recipient_ids: Sequence[str]) -> dict[str, str]:
        """The kinds of the known recipients among these (one read)."""
        ...

    async def recipient_kind(self, recipient_id: str | None) -> str | None:
        """A recipient's kind, None if unknown."""
        ...

    async def recipient_name(self, recipient_id: str) -> str | None:
        """A recipient's name, None if unknown."""
        ...

    async def save_contact(self, owner_id: str, kind: str, fields: dict[str, Any]) -> None:
        """Store a confidential contact (the latest record per owner wins)."""
        ...

    async def erase_contact(self, owner_id: str) -> None:
        """Forget a contact entirely."""
        ...

    async def contact(self, owner_id: str, *, kind: str | None = None) -> Contact | None:
        """A contact by owner id (and kind, when given)."""
        ...

    async def contacts(self, owner_ids: Sequence[str]) -> dict[str, Contact]:
        """The known contacts among these owner ids (one read)."""
        ...

    async def recipient_names(self, recipient_ids: Sequence[str]) -> dict[str, str]:
        """The names of the known recipients among these (one read)."""
        ...


class EmailQueue(Protocol):
    """The durable e-mail outbox."""

    async def add_many(
        self, emails: Sequence[QueuedEmail], *, lease_until: datetime | None = None
    ) -> list[QueuedEmail]:
        """Queue e-mails in one write (ids already queued are left alone); the new ones, stored leased to
        the caller until `lease_until` when given (it sends them without a claim)."""
        ...

    async def add(self, email: QueuedEmail) -> bool:
        """Queue an e-mail; False if one with its id exists already."""
        ...

    async def claim_due_many(self, now: datetime, lease_until: datetime, limit: int) -> list[QueuedEmail]:
        """Lease up to `limit` due pending e-mails at once; the ones this call won."""
        ...

    async def settle_many(self, settled: Sequence[tuple[QueuedEmail, dict[str, Any]]]) -> None:
        """Change many leased e-mails and release their leases (raises when one was not written)."""
        ...

    async def sweep_finished(self, cutoff: datetime) -> int:
        """Delete finished e-mails created before `cutoff`; how many."""
        ...


# -- senders and secrets -------------------------------------------------------------------------


class WebhookSender(Protocol):
    """Sends one signed request to the endpoint's checked address; never raises for the receiver's failures."""

    async def send(self, request: WebhookRequest) -> AttemptResult:
        """One POST and what came of it."""
        ...

    async def close(self) -> None:
        """Close pooled connections."""
        ...


class UrlRules(Protocol):
    """Checks a webhook URL's form (scheme, host, no credentials)."""

    def host_of(self, url: str) -> str:
        """The URL's host if the URL may be used; raises UrlRefused otherwise."""
        ...


class MailSender(Protocol):
    """Sends one rendered e-mail or raises."""

    async def send(self, to: str, email: RenderedEmail, *, message_id: str) -> None:
        """Send or raise."""
        ...

    async def close(self) -> None:
        """Close any kept connection."""
        ...


class SecretGenerator(Protocol):
    """Makes new signing secrets."""

    def new_secret(self) -> str:
        """A new `whsec_` secret."""
        ...


class SecretSealer(Protocol):
    """Encrypts signing secrets at rest."""

    def seal(self, secret: str) -> str:
        """Ciphertext of one secret."""
        ...

    def open(self, sealed: str) -> str:
        """The secret inside a ciphertext."""
        ...


# -- delivery limits -----------------------------------------------------------------------------


class DeliverySlots(Protocol):
    """Concurrency limits of the delivery loop: overall and per endpoint (so a slow endpoint holds only its own)."""

    def room(self) -> int:
        """How many more attempts may start now."""
        ...

    def saturated(self) -> list[str]:
        """Endpoints without a free slot."""
        ...

    def pick(self, candidates: Sequence[DueDelivery], room: int) -> list[str]:
        """Which due deliveries to lease within the limits."""
        ...

    def take(self, endpoint_id: str) -> None:
        """An attempt for this endpoint started."""
        ...

    def release(self, endpoint_id: str) -> None:
        """An attempt for this endpoint ended."""
        ...


class RateGate(Protocol):
    """An endpoint's own rate limit (attempts per second)."""

    async def admit(self, endpoint_id: str, rate_per_second: float, now: datetime) -> datetime | None:
        """None if an attempt may go now (its slot is taken); otherwise when to try again."""
        ...


class PendingDeliveries(Protocol):
    """How big the webhook queue is (for the queue metrics)."""

    async def summary(self) -> tuple[int, datetime | None]:
        """How many deliveries are pending, and when the oldest of them was created."""
        ...
