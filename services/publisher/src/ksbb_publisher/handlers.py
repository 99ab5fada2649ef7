"""Events in: one handler per public event type, registered on the publisher's event router.

The live consumer applies records in batches (`Projection.apply_batch`, see the composition root); these
handlers are the single-record path the batch falls back to, record by record, when a batch fails, so a
poisoned record is retried and dead-lettered alone.
"""

from __future__ import annotations

from ksbb_contracts import EVENT_TYPES, CloudEvent, Event
from ksbb_contracts.events import (
    DonorProfileUpdated,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    NeedCancelled,
    NeedChanged,
    NeedClosed,
    NeedFulfilled,
    NeedLedgerChanged,
    NeedOpened,
    OfferCreated,
    OrganisationRegistered,
    OrganisationReinstated,
    OrganisationSuspended,
    OrganisationUpdated,
    PledgeCancelled,
    PledgeConfirmed,
    PledgeCreated,
    PledgeDelivered,
    PledgeDispatched,
    PledgeExpired,
    PledgeExpiring,
    PledgeRejected,
    PledgeRestated,
    RecipientActivated,
    RecipientArchived,
    RecipientRegistered,
    RecipientReinstated,
    RecipientSuspended,
    RecipientUpdated,
    RecipientVerified,
)
from ksbb_contracts.events.pledges import _PledgeEvent
from ksbb_contracts.events.registry import _NeedEvent, _OrganisationEvent, _RecipientEvent
from ksbb_contracts.topics import topics_consumed_by
from ksbb_kit.consumer import EventRouter

from ksbb_publisher.app.projection import Projection


def public_event_types() -> list[type[Event]]:
    """Every event type on a topic the publisher consumes; confidential topics are refused outright."""
    topics = topics_consumed_by("publisher")
    if any(t.confidential for t in topics):
        raise RuntimeError("the publisher must never consume a confidential topic")
    names = {t.name for t in topics}
    return [cls for cls in EVENT_TYPES.values() if cls.topic.name in names]


def build_router(projection: Projection) -> EventRouter:
    """The publisher's event routes: every public event type goes straight to its projection."""
    router = EventRouter("publisher")

    @router.on(OrganisationRegistered, OrganisationUpdated, OrganisationSuspended, OrganisationReinstated)
    async def organisation_changed(event: _OrganisationEvent, envelope: CloudEvent) -> None:
        await projection.organisation(event, envelope)

    @router.on(
        RecipientRegistered,
        RecipientVerified,
        RecipientActivated,
        RecipientUpdated,
        RecipientSuspended,
        RecipientReinstated,
        RecipientArchived,
    )
    async def recipient_changed(event: _RecipientEvent, envelope: CloudEvent) -> None:
        await projection.recipient(event, envelope)

    @router.on(NeedOpened, NeedChanged, NeedClosed, NeedCancelled, NeedFulfilled)
    async def need_changed(event: _NeedEvent, envelope: CloudEvent) -> None:
        await projection.need(event, envelope)

    @router.on(NeedLedgerChanged)
    async def ledger_changed(event: NeedLedgerChanged, envelope: CloudEvent) -> None:
        await projection.ledger(event, envelope)

    @router.on(DonorProfileUpdated)
    async def donor_profile_updated(event: DonorProfileUpdated, envelope: CloudEvent) -> None:
        await projection.donor(event, envelope)

    @router.on(
        PledgeCreated,
        PledgeConfirmed,
        PledgeDispatched,
        PledgeDelivered,
        PledgeCancelled,
        PledgeRejected,
        PledgeExpired,
        PledgeExpiring,
        PledgeRestated,
    )
    async def pledge_changed(event: _PledgeEvent, envelope: CloudEvent) -> None:
        await projection.pledge(event, envelope)

    @router.on(OfferCreated)
    async def offer_created(event: OfferCreated, envelope: CloudEvent) -> None:
        await projection.offer(event, envelope)

    @router.on(MatchProposed, MatchAccepted, MatchDeclined)
    async def match_changed(event: MatchProposed | MatchAccepted | MatchDeclined, envelope: CloudEvent) -> None:
        await projection.offer(event, envelope)

    if any(topic.confidential for topic in router.topics()):
        raise RuntimeError("the publisher must never consume a confidential topic")
    return router
