"""The read models in MongoDB, write side: batches folded per document, one bulk write per read model.

Every lookup uses `_id` or a unique index (`_rev`, `seq`), so its cost does not grow with the collection —
also on the stand-in server, which ignores other indexes. A write is conditional on the document's
revision token being the one read (`_rev`, unique): a concurrent writer (a rebalance, a rebuild next to
the live consumer) makes it miss, and the batch folds again on a fresh read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ksbb_kit.consumer import APPLIED
from ksbb_kit.ids import new_id
from ksbb_kit.repairs import note_repair
from pymongo import ASCENDING, DESCENDING, InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ksbb_publisher.domain.projection import (
    READ_MODELS,
    REVISION,
    OfferChange,
    OfferUpdate,
    VersionedPart,
    batch_updates,
    fold_offer_changes,
)

#: Not a read model: the highest feed `seq` handed out (`top`) and the floor a rebuild keeps numbers above.
FEED_SEQUENCE = "feed_sequence"
#: Event ids each offer remembers (offers carry no version; a redelivery is recognised by its id).
OFFER_EVENTS_KEPT = 500
#: Feed numbers probed above the recorded top (entries a crashed replica stored before recording them).
FEED_PROBE = 64
DUPLICATE_KEY = 11000
Doc = dict[str, Any]


class MongoProjectionStore:
    """Applies projection batches with conditional single-document writes (no transactions needed)."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        # Feed inserts of this process are serialised so they never race each other for a `seq`.
        self._feed_lock = asyncio.Lock()
        self._last_seq: int | None = None

    async def ensure_indexes(self) -> None:
        """Indexes for the public queries, and the unique revision index of every read model."""
        await self.db.recipients.create_index([("kota_code", ASCENDING)])
        await self.db.recipients.create_index([("kecamatan_code", ASCENDING)])
        await self.db.recipients.create_index([("kelurahan_code", ASCENDING)])
        await self.db.needs.create_index([("recipient_id", ASCENDING)])
        await self.db.needs.create_index([("status", ASCENDING)])
        await self.db.feed.create_index([("cursor", DESCENDING)])
        await self._backfill_feed_seq()
        await self.db.feed.create_index([("seq", ASCENDING)], unique=True)
        await self.db.feed.create_index([("recipient_id", ASCENDING)])
        for name in READ_MODELS:
            if name != "feed":
                await self.db[name].create_index([(REVISION, ASCENDING)], unique=True, sparse=True)

    # -- versioned parts -----------------------------------------------------------------------

    async def apply_parts(self, parts: Sequence[VersionedPart]) -> int:
        """Merge parts into their documents (the rule of `domain.projection.fold`); returns documents changed."""
        by_model: dict[str, list[VersionedPart]] = {}
        for part in parts:
            by_model.setdefault(part.model, []).append(part)
        changed = await asyncio.gather(*(self._apply_model(model, todo) for model, todo in by_model.items()))
        return sum(changed)

    async def apply_part(self, part: VersionedPart) -> bool:
        """Merge one part into its document; True when applied."""
        return await self.apply_parts([part]) > 0

    async def _apply_model(self, model: str, parts: list[VersionedPart]) -> int:
        collection = self.db[model]
        version_fields = {part.version_field: 1 for part in parts}
        version_fields |= {part.digest_field: 1 for part in parts if part.digest_field}
        changed = 0
        while parts:
            ids = list(dict.fromkeys(part.doc_id for part in parts))
            found = collection.find({"_id": {"$in": ids}}, {REVISION: 1, **version_fields})
            stored = {d["_id"]: d async for d in found}
            updates = batch_updates(parts, {(model, doc_id): doc for doc_id, doc in stored.items()})
            if not updates:
                return changed
            writes = {key[1]: (fields, stored.get(key[1])) for key, fields in updates.items()}
            lost = await _write_revisions(collection, writes, lambda doc_id, fields: {"$set": fields})
            changed += len(writes) - len(lost)
            _note_repairs(model, parts, stored, set(writes) - set(lost))
            parts = [part for part in parts if part.doc_id in lost]  # fold again on what the winner wrote
        return changed

    # -- offers --------------------------------------------------------------------------------

    async def apply_offers(self, changes: Sequence[OfferChange]) -> int:
        """Apply offer changes in order, each event id once per offer; returns offers changed."""
        todo = list(changes)
        changed = 0
        while todo:
            ids = list(dict.fromkeys(change.offer_id for change in todo))
            stored = {d["_id"]: d async for d in self.db.offers.find({"_id": {"$in": ids}}, {REVISION: 1, APPLIED: 1})}
            updates = fold_offer_changes(todo, {doc_id: doc.get(APPLIED, []) for doc_id, doc in stored.items()})
            if not updates:
                return changed
            writes = {offer_id: (dict(update.fields), stored.get(offer_id)) for offer_id, update in updates.items()}
            lost = await _write_revisions(self.db.offers, writes, partial(_offer_update, updates))
            changed += len(writes) - len(lost)
            todo = [change for change in todo if change.offer_id in lost]
        return changed

    async def apply_offer(self, change: OfferChange) -> bool:
        """Apply one offer change unless its event id was applied to the offer already."""
        return await self.apply_offers([change]) > 0

    # -- the feed ------------------------------------------------------------------------------

    async def highest_feed_seq(self) -> int:
        """The highest `seq` in the feed, or handed out before the last rebuild (0 when none)."""
        marks = await self.db[FEED_SEQUENCE].find_one({"_id": "feed"}) or {}
        floor = int(marks.get("floor", 0))
        if "top" not in marks:
            # A feed written before the top was recorded: look once (a scan), then it is recorded.
            top = await self.db.feed.find_one({"seq": {"$exists": True}}, {"seq": 1}, sort=[("seq", DESCENDING)])
            return max(floor, int(top["seq"]) if top else 0)
        highest = max(floor, int(marks["top"]))
        while True:  # entries stored after the last recorded top (a replica crashed before recording it)
            window = list(range(highest + 1, highest + 1 + FEED_PROBE))
            found = [d["seq"] async for d in self.db.feed.find({"seq": {"$in": window}}, {"seq": 1})]
            if not found:
                return highest
            highest = max(found)

    async def insert_feed_entries(self, entries: Sequence[Doc]) -> list[Doc]:
        """Insert new feed entries with the next insertion sequence numbers; returns those stored now.

        `seq` = highest + 1, + 2, … under a unique index, inserted in order: seq n can only be stored once
        n - 1 is, so the sequence has no gaps and a reader never sees n before n - 1 — the SSE stream relies
        on both. An entry that exists already (redelivery) is skipped; another replica taking a number makes
        the insert stop there, and we continue from the new top.
        """
        unique = list({entry["_id"]: entry for entry in entries}.values())  # a redelivery in the same batch
        if not unique:
            return []
        async with self._feed_lock:
            found = self.db.feed.find({"_id": {"$in": [e["_id"] for e in unique]}}, {"_id": 1})
            known = {d["_id"] async for d in found}
            fresh = [entry for entry in unique if entry["_id"] not in known]
            stored: list[Doc] = []
            while fresh:
                if self._last_seq is None:
                    self._last_seq = await self.highest_feed_seq()
                numbered = [{**entry, "seq": self._last_seq + 1 + i} for i, entry in enumerate(fresh)]
                try:
                    await self.db.feed.insert_many(numbered, ordered=True)
                    done, failed = len(numbered), None
                except BulkWriteError as exc:
                    errors = exc.details.get("writeErrors", [])
                    if not errors or errors[0].get("code") != DUPLICATE_KEY:
                        raise
                    # Ordered: everything before the first error is stored, nothing after it is tried (the
                    # error's index says where; the stand-in server's `nInserted` counts the whole batch).
                    done = int(errors[0]["index"])
                    failed = numbered[done]
                stored += numbered[:done]
                if done:
                    self._last_seq = numbered[done - 1]["seq"]
                fresh = fresh[done:]
                if failed is not None:
                    if await self.db.feed.find_one({"_id": failed["_id"]}, {"_id": 1}) is not None:
                        fresh = fresh[1:]  # another replica stored this very entry meanwhile
                    else:
                        self._last_seq = None  # another replica took this number: continue above its entries
            if stored:
                await self.db[FEED_SEQUENCE].update_one(
                    {"_id": "feed"}, {"$max": {"top": stored[-1]["seq"]}}, upsert=True
                )
            return stored

    async def insert_feed_entry(self, entry: Doc) -> Doc | None:
        """Insert one new feed entry; None when it exists already."""
        stored = await self.insert_feed_entries([entry])
        return stored[0] if stored else None

    async def reset(self) -> None:
        """Drop the read models for a rebuild, keeping the feed numbering above every `seq` handed out."""
        # Rebuilt feed entries get numbers above every `seq` handed out so far: SSE clients resuming with an
        # old Last-Event-ID then receive the rebuilt feed again (entry `id`s are stable) instead of missing it.
        floor = await self.highest_feed_seq()
        await self.db[FEED_SEQUENCE].update_one(
            {"_id": "feed"}, {"$max": {"floor": floor, "top": floor}}, upsert=True
        )
        for name in READ_MODELS:
            await self.db.drop_collection(name)
        async with self._feed_lock:
            self._last_seq = None
        await self.ensure_indexes()

    async def _backfill_feed_seq(self) -> None:
        # Entries projected before `seq` existed get one, in cursor order, before the unique index exists.
        async with self._feed_lock:
            self._last_seq = None
            if await self.db[FEED_SEQUENCE].find_one({"_id": "feed", "top": {"$exists": True}}, {"_id": 1}):
                return  # numbered since `top` is recorded: nothing left without a seq
            next_seq = await self.highest_feed_seq()
            async for doc in self.db.feed.find({"seq": {"$exists": False}}, {"_id": 1}).sort(
                "cursor", ASCENDING
            ):
                next_seq += 1
                await self.db.feed.update_one(
                    {"_id": doc["_id"], "seq": {"$exists": False}}, {"$set": {"seq": next_seq}}
                )
            await self.db[FEED_SEQUENCE].update_one({"_id": "feed"}, {"$max": {"top": next_seq}}, upsert=True)


def _offer_update(updates: dict[str, OfferUpdate], offer_id: str, fields: Doc) -> Doc:
    """Set the offer's fields and remember the event ids applied (the last OFFER_EVENTS_KEPT)."""
    applied = list(updates[offer_id].event_ids)
    return {"$set": fields, "$push": {APPLIED: {"$each": applied, "$slice": -OFFER_EVENTS_KEPT}}}


async def _write_revisions(
    collection: AsyncCollection[Doc],
    writes: dict[Any, tuple[Doc, Doc | None]],
    update_of: Callable[[Any, Doc], Doc],
) -> set[Any]:
    """Write each document (fields, stored revision) conditionally on its revision; returns the ids that lost.

    New documents are inserted (a duplicate key means another writer created it first); existing ones are
    updated where `_rev` still has the value read — a unique index, so the filter is an index lookup.
    """
    operations: list[InsertOne[Doc] | UpdateOne] = []
    revisions: dict[Any, str] = {}
    order: list[Any] = []
    for doc_id, (fields, stored) in writes.items():
        revision = revisions[doc_id] = new_id("rev")
        update = update_of(doc_id, {**fields, REVISION: revision})
        order.append(doc_id)
        if stored is None:
            document = {"_id": doc_id, **update["$set"]}
            for name, value in update.get("$push", {}).items():
                document[name] = list(value["$each"])[-OFFER_EVENTS_KEPT:]
            operations.append(InsertOne(document))
        elif stored.get(REVISION) is not None:
            operations.append(UpdateOne({REVISION: stored[REVISION]}, update))
        else:  # written before revisions existed: the first write gives it one
            operations.append(UpdateOne({"_id": doc_id}, update))
    try:
        result = await collection.bulk_write(operations, ordered=False)
        missed = len([op for op in operations if isinstance(op, UpdateOne)]) - result.matched_count
    except BulkWriteError as exc:
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
            raise
        missed = 1  # some insert lost a race; find out which below
    except DuplicateKeyError:
        missed = 1
    if not missed:
        return set()
    current = {d["_id"]: d.get(REVISION) async for d in collection.find({"_id": {"$in": order}}, {REVISION: 1})}
    return {doc_id for doc_id in order if current.get(doc_id) != revisions[doc_id]}


def _note_repairs(model: str, parts: list[VersionedPart], stored: dict[Any, Doc], written: set[Any]) -> None:
    """Count (and log once) documents a part repaired although they held its version or a newer one."""
    for part in parts:
        if part.doc_id in written:
            reason = part.repair_reason(stored.get(part.doc_id))
            if reason is not None:
                note_repair(f"publisher.{model}.{part.version_field}", part.doc_id, reason)
