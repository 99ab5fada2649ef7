"""Projecting public events into the read models; the same use case serves live consumption and rebuild.

Events are applied in batches: each event becomes a versioned part, an offer change or a feed entry; the
store folds a batch per document (`domain.projection.batch_updates`) and writes each changed document
once. A single event is a batch of one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ksbb_contracts import CloudEvent, Event
from ksbb_contracts.events import (
    DonorProfileUpdated,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    NeedLedgerChanged,
    OfferCreated,
)
from ksbb_contracts.events.pledges import _PledgeEvent
from ksbb_contracts.events.registry import _NeedEvent, _OrganisationEvent, _RecipientEvent
from ksbb_kit.clock import Clock

from ksbb_publisher.app.ports import Doc, FeedListener, ProjectionStore
from ksbb_publisher.domain.feed import feed_entry
from ksbb_publisher.domain.projection import (
    OfferChange,
    OfferEvent,
    VersionedPart,
    donor_part,
    ledger_part,
    need_part,
    offer_change,
    offer_created_change,
    organisation_part,
    pledge_part,
    recipient_part,
)


@dataclass
class BatchChanges:
    """What a batch of events changes, in event order."""

    parts: list[VersionedPart] = field(default_factory=list)
    offers: list[OfferChange] = field(default_factory=list)
    feed: list[Doc] = field(default_factory=list)


def changes_of(items: Sequence[tuple[Event, CloudEvent]], now: datetime) -> BatchChanges:
    """The read-model changes of public events (each event with its envelope)."""
    changes = BatchChanges()
    for event, envelope in items:
        if isinstance(event, _OrganisationEvent):
            changes.parts.append(organisation_part(event))
        elif isinstance(event, _RecipientEvent):
            changes.parts.append(recipient_part(event, now))
        elif isinstance(event, _NeedEvent):
            changes.parts.append(need_part(event, now))
        elif isinstance(event, NeedLedgerChanged):
            changes.parts.append(ledger_part(event, now))
        elif isinstance(event, DonorProfileUpdated):
            changes.parts.append(donor_part(event))
        elif isinstance(event, _PledgeEvent):
            changes.parts.append(pledge_part(event))
            entry = feed_entry(event, envelope.id, now)
            if entry is not None:
                changes.feed.append(entry)
        elif isinstance(event, OfferCreated):
            changes.offers.append(offer_created_change(event, envelope.id))
        elif isinstance(event, MatchProposed | MatchAccepted | MatchDeclined):
            changes.offers.append(offer_change(event, envelope.id))
        else:
            raise TypeError(f"the publisher does not project {type(event).__name__}")
    return changes


#: The read models a feed entry is rendered from (donor names, recipient names).
RENDERED_FROM = frozenset({"donors", "recipients"})


async def _nothing_stored() -> list[Doc]:
    return []


class Projection:
    """Applies public events to the read models, idempotently, one batch at a time."""

    def __init__(self, store: ProjectionStore, clock: Clock, on_feed_entries: FeedListener | None = None) -> None:
        self._store = store
        self._clock = clock
        self._on_feed_entries = on_feed_entries

    async def apply_batch(self, items: Sequence[tuple[Any, CloudEvent]]) -> None:
        """Apply events (each with its envelope): parts and offers folded per document, and new feed entries."""
        changes = changes_of(items, self._clock.now())
        if any(part.model in RENDERED_FROM for part in changes.parts):
            # A stored entry may be shown at once (another replica's poll): never before its donor's opt-out.
            await self._apply_read_models(changes)
            stored = await self._store.insert_feed_entries(changes.feed) if changes.feed else []
        else:
            # The entries depend on no read model this batch changes: stored while those are written.
            written, inserted = await asyncio.gather(
                self._apply_read_models(changes),
                self._store.insert_feed_entries(changes.feed) if changes.feed else _nothing_stored(),
                return_exceptions=True,  # both finish before a failure is raised (a retry never races either)
            )
            for outcome in (written, inserted):
                if isinstance(outcome, BaseException):
                    raise outcome
            assert not isinstance(inserted, BaseException)
            stored = inserted
        if stored and self._on_feed_entries is not None:
            await self._on_feed_entries(stored)

    async def _apply_read_models(self, changes: BatchChanges) -> None:
        if changes.parts:
            await self._store.apply_parts(changes.parts)
        if changes.offers:
            await self._store.apply_offers(changes.offers)

    async def organisation(self, event: _OrganisationEvent, envelope: CloudEvent) -> None:
        """An organisation registered, changed, suspended or reinstated."""
        await self.apply_batch([(event, envelope)])

    async def recipient(self, event: _RecipientEvent, envelope: CloudEvent) -> None:
        """A recipient's lifecycle or public facts changed."""
        await self.apply_batch([(event, envelope)])

    async def need(self, event: _NeedEvent, envelope: CloudEvent) -> None:
        """A need opened, changed or ended."""
        await self.apply_batch([(event, envelope)])

    async def ledger(self, event: NeedLedgerChanged, envelope: CloudEvent) -> None:
        """A need's progress (committed, in transit, delivered) changed."""
        await self.apply_batch([(event, envelope)])

    async def donor(self, event: DonorProfileUpdated, envelope: CloudEvent) -> None:
        """A donor's public profile changed (including an opt-out of showing the name)."""
        await self.apply_batch([(event, envelope)])

    async def pledge(self, event: _PledgeEvent, envelope: CloudEvent) -> None:
        """A pledge changed state: update the pledge, and add a feed entry when it is public activity."""
        await self.apply_batch([(event, envelope)])

    async def offer(self, event: OfferEvent, envelope: CloudEvent) -> None:
        """A donor offered goods, or an offer's match was proposed, accepted or declined."""
        await self.apply_batch([(event, envelope)])
