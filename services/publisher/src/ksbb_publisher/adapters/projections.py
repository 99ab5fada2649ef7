"""Projections: apply public events to the read models idempotently, in order per aggregate.

Every write is keyed by the aggregate id and guarded by the aggregate's version, so a redelivered or
stale event changes nothing; feed entries are keyed by the event id. Events may arrive out of order
across topics (a ledger change before its need opened): each topic writes its own fields of a shared
document with its own version, so the parts merge whichever comes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ksbb_contracts import CloudEvent, Event
from ksbb_contracts.events import (
    DonorProfileUpdated,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    NeedLedgerChanged,
    OfferCreated,
    PledgeDelivered,
)
from ksbb_contracts.events.pledges import _PledgeEvent
from ksbb_contracts.events.registry import _NeedEvent, _OrganisationEvent, _RecipientEvent
from ksbb_kit.clock import Clock
from ksbb_kit.consumer import apply_once
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_publisher.domain.areas import area_fields
from ksbb_publisher.domain.feed import FEED_KINDS, feed_cursor

#: Collections rebuilt from the topics; `snapshots` and `snapshot_chunks` are not read models.
READ_MODELS: tuple[str, ...] = ("recipients", "needs", "organisations", "donors", "pledges", "feed", "offers")
#: Fields that record when (`projected_at`) and in which order (`seq`) this database projected something:
#: they differ between two builds (a rebuild applies aggregates concurrently, in another order).
VOLATILE_FIELDS: frozenset[str] = frozenset({"projected_at", "seq"})
#: Not a read model: keeps the highest feed `seq` ever handed out, so a rebuild never reuses one.
FEED_SEQUENCE = "feed_sequence"

FeedListener = Callable[[dict[str, Any]], Awaitable[None]]


async def versioned_upsert(
    collection: AsyncCollection[dict[str, Any]],
    doc_id: str,
    version_field: str,
    version: int,
    fields: dict[str, Any],
    *,
    on_insert: dict[str, Any] | None = None,
) -> bool:
    """Set fields unless the stored `version_field` is already >= version; True when applied."""
    guard = {"_id": doc_id, "$or": [{version_field: {"$lt": version}}, {version_field: {"$exists": False}}]}
    update: dict[str, Any] = {"$set": {**fields, version_field: version}}
    if on_insert:
        update["$setOnInsert"] = on_insert
    try:
        result = await collection.update_one(guard, update, upsert=True)
        return result.modified_count > 0 or result.upserted_id is not None
    except DuplicateKeyError:
        # Either the stored version is newer (stale event: nothing to do) or another write created the
        # document between our match and insert: retry once as a plain guarded update.
        result = await collection.update_one(guard, update)
        return result.modified_count > 0


class Projector:
    """Applies events to the publisher's read models; the same code serves live consumption and rebuild."""

    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], clock: Clock, on_feed_entry: FeedListener | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.on_feed_entry = on_feed_entry
        # Feed inserts of this process are serialised so they never race each other for a `seq`.
        self._feed_lock = asyncio.Lock()
        self._last_seq: int | None = None

    async def ensure_indexes(self) -> None:
        """Indexes for the public queries."""
        await self.db.recipients.create_index([("kota_code", ASCENDING)])
        await self.db.recipients.create_index([("kecamatan_code", ASCENDING)])
        await self.db.recipients.create_index([("kelurahan_code", ASCENDING)])
        await self.db.needs.create_index([("recipient_id", ASCENDING)])
        await self.db.needs.create_index([("status", ASCENDING)])
        await self.db.feed.create_index([("cursor", DESCENDING)])
        await self._backfill_feed_seq()
        await self.db.feed.create_index([("seq", ASCENDING)], unique=True)
        await self.db.feed.create_index([("recipient_id", ASCENDING)])

    async def apply(self, event: Event, envelope: CloudEvent) -> None:
        """Apply one event of any consumed type."""
        if isinstance(event, _OrganisationEvent):
            await self._organisation(event)
        elif isinstance(event, _RecipientEvent):
            await self._recipient(event, envelope)
        elif isinstance(event, _NeedEvent):
            await self._need(event, envelope)
        elif isinstance(event, NeedLedgerChanged):
            await self._ledger(event)
        elif isinstance(event, DonorProfileUpdated):
            await self._donor(event)
        elif isinstance(event, _PledgeEvent):
            await self._pledge(event, envelope)
        elif isinstance(event, OfferCreated | MatchProposed | MatchAccepted | MatchDeclined):
            await self._offer(event, envelope)

    async def _organisation(self, event: _OrganisationEvent) -> None:
        org = event.organisation
        await versioned_upsert(
            self.db.organisations,
            org.organisation_id,
            "version",
            org.version,
            {
                "organisation_id": org.organisation_id,
                "name": org.name,
                "kind": org.kind.value,
                "area_codes": list(org.area_codes),
                "status": org.status.value,
            },
        )

    async def _recipient(self, event: _RecipientEvent, envelope: CloudEvent) -> None:
        rec = event.recipient
        fields: dict[str, Any] = {
            "recipient_id": rec.recipient_id,
            "name": rec.name,
            "kind": rec.kind.value,
            "kind_description": rec.kind_description,
            "organisation_id": rec.organisation_id,
            **area_fields(rec.kelurahan_code),
            "rw": rec.rw,
            "beneficiaries": rec.beneficiaries.model_dump(mode="json"),
            "status": rec.status.value,
            "updated_at": event.occurred_at,
            "projected_at": self.clock.now(),
        }
        # RT numbers and anything not in RecipientPublic are deliberately not kept: RW is precise enough.
        await versioned_upsert(self.db.recipients, rec.recipient_id, "version", rec.version, fields)

    async def _need(self, event: _NeedEvent, envelope: CloudEvent) -> None:
        need = event.need
        data = need.model_dump(mode="json")
        fields: dict[str, Any] = {
            "need_id": need.need_id,
            "recipient_id": need.recipient_id,
            "organisation_id": need.organisation_id,
            **area_fields(need.kelurahan_code),
            "rw": need.rw,
            "item": data["item"],
            "item_description": need.item_description,
            "quantity": need.quantity,
            "unit": need.unit,
            "priority": data["priority"],
            "needed_by": data["needed_by"],
            "recurrence": data["recurrence"],
            "series_id": need.series_id,
            "period_start": data["period_start"],
            "status": data["status"],
            "updated_at": event.occurred_at,
            "projected_at": self.clock.now(),
        }
        await versioned_upsert(self.db.needs, need.need_id, "version", need.version, fields)

    async def _ledger(self, event: NeedLedgerChanged) -> None:
        await versioned_upsert(
            self.db.needs,
            event.need_id,
            "ledger_version",
            event.ledger_version,
            {
                "recipient_id": event.recipient_id,
                "progress": {
                    "requested": event.requested,
                    "committed": event.committed,
                    "in_transit": event.in_transit,
                    "delivered": event.delivered,
                },
                "ledger_status": event.need_status.value,
                "ledger_at": event.occurred_at,
                "projected_at": self.clock.now(),
            },
        )

    async def _donor(self, event: DonorProfileUpdated) -> None:
        # The name is kept only when the donor opted in; otherwise it is never stored at all.
        shown = event.display_name if event.show_name and event.display_name else None
        await versioned_upsert(
            self.db.donors,
            event.donor_id,
            "version",
            event.version,
            {
                "donor_id": event.donor_id,
                "kind": event.kind.value,
                "display_name": shown,
            },
        )

    async def _pledge(self, event: _PledgeEvent, envelope: CloudEvent) -> None:
        kind = FEED_KINDS.get(envelope.type)
        pledge = event.pledge
        await versioned_upsert(
            self.db.pledges,
            pledge.pledge_id,
            "version",
            pledge.version,
            {
                "pledge_id": pledge.pledge_id,
                "need_id": pledge.need_id,
                "recipient_id": pledge.recipient_id,
                "donor_id": pledge.donor_id,
                "item": pledge.item.value,
                "quantity": pledge.quantity,
                "status": pledge.status.value,
                "updated_at": event.occurred_at,
            },
        )
        if kind is None:
            return
        entry: dict[str, Any] = {
            "_id": envelope.id,
            "cursor": feed_cursor(event.occurred_at, envelope.id),
            "kind": kind,
            "event_type": envelope.type,
            "pledge_id": pledge.pledge_id,
            "need_id": pledge.need_id,
            "recipient_id": pledge.recipient_id,
            "organisation_id": pledge.organisation_id,
            "donor_id": pledge.donor_id,
            "item": pledge.item.value,
            "quantity": pledge.quantity,
            "delivered_quantity": event.received_quantity if isinstance(event, PledgeDelivered) else None,
            **area_fields(pledge.kelurahan_code),
            "occurred_at": event.occurred_at,
            "projected_at": self.clock.now(),
        }
        inserted = await self.insert_feed_entry(entry)
        if inserted is not None and self.on_feed_entry is not None:
            await self.on_feed_entry(inserted)

    async def highest_feed_seq(self) -> int:
        """The highest `seq` in the feed, or handed out before the last rebuild (0 when none)."""
        top = await self.db.feed.find_one({"seq": {"$exists": True}}, {"seq": 1}, sort=[("seq", DESCENDING)])
        floor = await self.db[FEED_SEQUENCE].find_one({"_id": "feed"})
        return max(int(top["seq"]) if top else 0, int(floor["floor"]) if floor else 0)

    async def insert_feed_entry(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        """Insert a new feed entry with the next insertion sequence `seq`; None when it exists already.

        `seq` = highest + 1 under a unique index: seq n can only be inserted once n - 1 is visible, so the
        sequence has no gaps and a reader never sees n before n - 1 — the SSE stream relies on both.
        Another replica taking the same number makes the insert fail; we re-read the top and try again.
        """
        async with self._feed_lock:
            while True:
                if self._last_seq is None:
                    self._last_seq = await self.highest_feed_seq()
                candidate = {**entry, "seq": self._last_seq + 1}
                try:
                    await self.db.feed.insert_one(candidate)
                except DuplicateKeyError:
                    if await self.db.feed.find_one({"_id": entry["_id"]}, {"_id": 1}) is not None:
                        return None  # redelivery: the entry exists, with its seq, and was announced
                    self._last_seq = None  # another replica took this seq
                    continue
                self._last_seq = candidate["seq"]
                return candidate

    async def _backfill_feed_seq(self) -> None:
        # Entries projected before `seq` existed get one, in cursor order, before the unique index exists.
        async with self._feed_lock:
            self._last_seq = None
            next_seq = await self.highest_feed_seq()
            async for doc in self.db.feed.find({"seq": {"$exists": False}}, {"_id": 1}).sort(
                "cursor", ASCENDING
            ):
                next_seq += 1
                await self.db.feed.update_one(
                    {"_id": doc["_id"], "seq": {"$exists": False}}, {"$set": {"seq": next_seq}}
                )

    async def _offer(self, event: Event, envelope: CloudEvent) -> None:
        # Offers only count towards statistics (donors active); per-offer status, keyed by offer id.
        data = event.model_dump(mode="json")
        status = {
            "ksbb.offer.created.v1": "open",
            "ksbb.match.proposed.v1": "proposed",
            "ksbb.match.accepted.v1": "accepted",
            "ksbb.match.declined.v1": "declined",
        }[envelope.type]
        fields: dict[str, Any] = {
            "offer_id": data["offer_id"],
            "donor_id": data["donor_id"],
            "status": status,
            "status_at": data["occurred_at"],
        }
        if isinstance(event, OfferCreated):
            fields |= {
                "item": data["item"],
                "quantity": data["quantity"],
                "area_codes": data["area_codes"],
                "available_until": data["available_until"],
            }
        # Offer events carry no version; they are ordered per offer (Kafka key), applied once by event id.
        await apply_once(
            self.db.offers, {"_id": data["offer_id"]}, {"$set": fields}, envelope.id, upsert=True
        )
