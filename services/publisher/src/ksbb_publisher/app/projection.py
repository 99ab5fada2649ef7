"""Projecting public events into the read models; the same use case serves live consumption and rebuild."""

from __future__ import annotations

from ksbb_contracts.events import DonorProfileUpdated, NeedLedgerChanged, OfferCreated
from ksbb_contracts.events.pledges import _PledgeEvent
from ksbb_contracts.events.registry import _NeedEvent, _OrganisationEvent, _RecipientEvent
from ksbb_kit.clock import Clock

from ksbb_publisher.app.ports import FeedListener, ProjectionStore
from ksbb_publisher.domain.feed import feed_entry
from ksbb_publisher.domain.projection import (
    OfferEvent,
    donor_part,
    ledger_part,
    need_part,
    offer_change,
    offer_created_change,
    organisation_part,
    pledge_part,
    recipient_part,
)


class Projection:
    """Applies each kind of public event to the read models, idempotently."""

    def __init__(self, store: ProjectionStore, clock: Clock, on_feed_entry: FeedListener | None = None) -> None:
        self._store = store
        self._clock = clock
        self._on_feed_entry = on_feed_entry

    async def organisation(self, event: _OrganisationEvent) -> None:
        """An organisation registered, changed, suspended or reinstated."""
        await self._store.apply_part(organisation_part(event))

    async def recipient(self, event: _RecipientEvent) -> None:
        """A recipient's lifecycle or public facts changed."""
        await self._store.apply_part(recipient_part(event, self._clock.now()))

    async def need(self, event: _NeedEvent) -> None:
        """A need opened, changed or ended."""
        await self._store.apply_part(need_part(event, self._clock.now()))

    async def ledger(self, event: NeedLedgerChanged) -> None:
        """A need's progress (committed, in transit, delivered) changed."""
        await self._store.apply_part(ledger_part(event, self._clock.now()))

    async def donor(self, event: DonorProfileUpdated) -> None:
        """A donor's public profile changed (including an opt-out of showing the name)."""
        await self._store.apply_part(donor_part(event))

    async def pledge(self, event: _PledgeEvent, event_id: str) -> None:
        """A pledge changed state: update the pledge, and add a feed entry when it is public activity."""
        await self._store.apply_part(pledge_part(event))
        entry = feed_entry(event, event_id, self._clock.now())
        if entry is None:
            return
        inserted = await self._store.insert_feed_entry(entry)
        if inserted is not None and self._on_feed_entry is not None:
            await self._on_feed_entry(inserted)

    async def offer_created(self, event: OfferCreated, event_id: str) -> None:
        """A donor offered goods."""
        await self._store.apply_offer(offer_created_change(event, event_id))

    async def match(self, event: OfferEvent, event_id: str) -> None:
        """An offer's match was proposed, accepted or declined."""
        await self._store.apply_offer(offer_change(event, event_id))
