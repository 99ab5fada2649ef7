"""The read models in MongoDB, write side: versioned merges, offers applied once, a gap-free feed sequence."""

from __future__ import annotations

import asyncio
from typing import Any

from ksbb_kit.consumer import apply_once
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_publisher.domain.projection import READ_MODELS, OfferChange, VersionedPart

#: Not a read model: keeps the highest feed `seq` ever handed out, so a rebuild never reuses one.
FEED_SEQUENCE = "feed_sequence"


class MongoProjectionStore:
    """Applies projection changes with single-document atomic writes (no transactions needed)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
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

    async def apply_part(self, part: VersionedPart) -> bool:
        """Set the part's fields unless the stored version of the part is already >= its version.

        The same rule as `domain.projection.merge`, as one guarded upsert: True when applied.
        """
        guard = {
            "_id": part.doc_id,
            "$or": [{part.version_field: {"$lt": part.version}}, {part.version_field: {"$exists": False}}],
        }
        update = {"$set": {**part.fields, part.version_field: part.version}}
        collection = self.db[part.model]
        try:
            result = await collection.update_one(guard, update, upsert=True)
            return result.modified_count > 0 or result.upserted_id is not None
        except DuplicateKeyError:
            # Either the stored version is newer (stale event: nothing to do) or another write created the
            # document between our match and insert: retry once as a plain guarded update.
            result = await collection.update_one(guard, update)
            return result.modified_count > 0

    async def apply_offer(self, change: OfferChange) -> bool:
        """Set the offer's fields unless this event id was applied to it already."""
        # Offer events carry no version; they are ordered per offer (Kafka key), applied once by event id.
        return await apply_once(
            self.db.offers, {"_id": change.offer_id}, {"$set": dict(change.fields)}, change.event_id, upsert=True
        )

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

    async def reset(self) -> None:
        """Drop the read models for a rebuild, keeping the feed numbering above every `seq` handed out."""
        # Rebuilt feed entries get numbers above every `seq` handed out so far: SSE clients resuming with an
        # old Last-Event-ID then receive the rebuilt feed again (entry `id`s are stable) instead of missing it.
        floor = await self.highest_feed_seq()
        await self.db[FEED_SEQUENCE].update_one({"_id": "feed"}, {"$max": {"floor": floor}}, upsert=True)
        for name in READ_MODELS:
            await self.db.drop_collection(name)
        await self.ensure_indexes()

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
