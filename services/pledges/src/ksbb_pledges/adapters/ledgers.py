"""Need ledgers in MongoDB: each decision becomes ONE conditional single-document update, events included.

The update is guarded by the ledger's revision `rev` as read before deciding and carries the changed
pledge(s), the recomputed quantities and the outgoing events (outbox). Concurrent writers — even in
other processes — that read the same revision lose the race, re-read and decide again, so a need can
never be committed beyond its requested quantity. The per-pledge copies are written after each change
(and repaired by a sweep when a crash came in between).
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, TypeVar

from ksbb_contracts.vocab import NeedStatus
from ksbb_kit.outbox import PendingWrite, new_document, with_outbox
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_pledges.adapters.copies import MongoPledgeCopies
from ksbb_pledges.adapters.outbox import OutboxEntries
from ksbb_pledges.domain.errors import UnknownNeed
from ksbb_pledges.domain.ledger import LedgerChange
from ksbb_pledges.domain.lifecycle import CONFIRMED, PLEDGED
from ksbb_pledges.domain.pledge import Ledger, Pledge

R = TypeVar("R")
#: Every ledger field except the pledge list and the outbox bookkeeping (focused reads).
LEDGER_SCALARS = (
    "_id",
    "recipient_id",
    "organisation_id",
    "kelurahan_code",
    "item",
    "unit",
    "priority",
    "needed_by",
    "requested",
    "status",
    "need_version",
    "recipient_version",
    "recipient_blocked",
    "committed",
    "in_transit",
    "delivered",
    "ledger_version",
    "rev",
    "created_at",
    "updated_at",
    "last_delivered_at",
)
LEDGER_FIELDS_HIDDEN = {"_outbox": 0, "_outbox_pending": 0, "_outbox_lease": 0, "_applied": 0}


class MongoLedgerStore:
    """Reads need ledgers and writes decisions on them atomically; keeps the per-pledge copies in step."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        *,
        outbox: OutboxEntries,
        pending: PendingWrite,
    ) -> None:
        self.ledgers = db["ledgers"]
        # The copies follow every write; their listing and repair are the copies store's own business.
        self.copies = MongoPledgeCopies(db)
        self._outbox = outbox
        self._pending = pending
        # One writer per need inside this process: contenders queue here instead of losing optimistic
        # races against each other; other processes are still held off by the revision guard.
        self._need_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def create_indexes(self) -> None:
        """Indexes the queries need (no partial or TTL indexes: the CI server lacks them)."""
        await self.ledgers.create_index([("pledges.pledge_id", ASCENDING)])
        await self.ledgers.create_index([("recipient_id", ASCENDING)])
        await self.ledgers.create_index([("status", ASCENDING), ("item", ASCENDING)])
        await self.copies.create_indexes()

    # -- reading ----------------------------------------------------------------------------------

    async def get(self, need_id: str, *, focus: str | None = None) -> Ledger | None:
        """A ledger without outbox bookkeeping; with `focus`, its pledges are only that one (if present)."""
        if focus is None:
            return await self.ledgers.find_one({"_id": need_id}, projection=LEDGER_FIELDS_HIDDEN)
        doc = await self.ledgers.find_one({"_id": need_id}, projection=_focused_on(focus))
        if doc is not None:
            doc.setdefault("pledges", [])
        return doc

    async def ledger_of_pledge(self, pledge_id: str) -> Ledger | None:
        """The ledger holding a pledge (the authoritative copy), with only that pledge in `pledges`."""
        return await self.ledgers.find_one({"pledges.pledge_id": pledge_id}, projection=_focused_on(pledge_id))

    async def need_ids_of_recipient(self, recipient_id: str) -> AsyncIterator[str]:
        """Every need of a recipient that has a ledger."""
        async for ledger in self.ledgers.find({"recipient_id": recipient_id}, projection={"_id": 1}):
            yield ledger["_id"]

    async def waiting_pledges(self) -> AsyncIterator[tuple[str, list[Pledge]]]:
        """(need id, pledges) of each ledger with a pledge waiting for confirmation or dispatch."""
        waiting = [PLEDGED.value, CONFIRMED.value]
        cursor = self.ledgers.find({"pledges.status": {"$in": waiting}}, projection={"_id": 1, "pledges": 1})
        async for candidate in cursor:
            yield candidate["_id"], candidate["pledges"]

    async def organisation_of_recipient(self, recipient_id: str) -> str | None:
        """The facilitating organisation named by any ledger of the recipient."""
        some = await self.ledgers.find_one({"recipient_id": recipient_id}, projection={"organisation_id": 1})
        return (some or {}).get("organisation_id")

    async def open_needs(self, item: str) -> list[Ledger]:
        """Open, unblocked needs of an item with something remaining (without their pledges)."""
        query = {
            "status": NeedStatus.OPEN.value,
            "item": item,
            "recipient_blocked": {"$ne": True},
            "$expr": {"$lt": ["$committed", "$requested"]},
        }
        projection = {"pledges": 0, "_outbox": 0, "_applied": 0}
        return [ledger async for ledger in self.ledgers.find(query, projection=projection)]

    async def pledges_of_offer(self, offer_id: str) -> dict[str, Pledge]:
        """The pledges already made from an offer, by need id."""
        found: dict[str, Pledge] = {}
        async for ledger in self.ledgers.find({"pledges.offer_id": offer_id}, projection={"pledges": 1}):
            for pledge in ledger["pledges"]:
                if pledge.get("offer_id") == offer_id:
                    found[ledger["_id"]] = pledge
        return found

    async def recipient_history(self) -> dict[str, tuple[int, datetime | None]]:
        """Per recipient: units received so far and when the last delivery happened (anti-stacking)."""
        pipeline = [
            {
                "$group": {
                    "_id": "$recipient_id",
                    "received": {"$sum": "$delivered"},
                    "last": {"$max": "$last_delivered_at"},
                }
            }
        ]
        history: dict[str, tuple[int, datetime | None]] = {}
        async for row in await self.ledgers.aggregate(pipeline):
            history[row["_id"]] = (int(row.get("received") or 0), row.get("last"))
        return history

    # -- changing ---------------------------------------------------------------------------------

    async def apply(
        self,
        need_id: str,
        decide: Callable[[Ledger], LedgerChange[R]],
        *,
        create: Callable[[], Ledger] | None = None,
        focus: str | None = None,
    ) -> R:
        """Write one decision on a ledger atomically, deciding again on a fresh read when another writer won.

        `decide` sees the current document and returns a LedgerChange (or raises to refuse); `create`,
        when given, builds the document for a need the ledger does not know yet; `focus` reads only that
        pledge of the ledger (a decision about one pledge must then append or replace just that one).
        """
        lock = self._need_locks.get(need_id)
        if lock is None:
            lock = self._need_locks[need_id] = asyncio.Lock()
        async with lock:
            return await self._apply(need_id, decide, create=create, focus=focus)

    async def _apply(
        self,
        need_id: str,
        decide: Callable[[Ledger], LedgerChange[R]],
        *,
        create: Callable[[], Ledger] | None,
        focus: str | None,
    ) -> R:
        attempt = 0
        while True:
            attempt += 1
            doc = await self.get(need_id, focus=focus)
            if doc is None:
                if create is None:
                    raise UnknownNeed(need_id)
                fresh = create()
                change = decide(fresh)
                if change.noop:
                    return change.result
                document = change.applied_to(fresh)
                entries = self._outbox(*change.events)
                try:
                    async with self._pending("ledgers", need_id, entries):
                        await self.ledgers.insert_one(new_document(document, entries))
                except DuplicateKeyError:
                    continue  # another writer created it first: decide again on theirs
                await self._after_write(document, change)
                return change.result
            change = decide(doc)
            if change.noop:
                return change.result
            if focus is not None and change.pledges is not None:
                raise AssertionError("a focused read cannot replace the whole pledge list")
            guard: dict[str, Any] = {"_id": need_id, "rev": doc["rev"]}
            update: dict[str, Any] = {"$set": dict(change.set_fields), "$inc": {"rev": 1}}
            if change.pledges is not None:
                update["$set"]["pledges"] = change.pledges
            elif change.appended is not None:
                update["$push"] = {"pledges": change.appended}
            elif change.replaced is not None:
                guard["pledges.pledge_id"] = change.replaced[1]["pledge_id"]
                update["$set"]["pledges.$"] = change.replaced[1]
            entries = self._outbox(*change.events)
            async with self._pending("ledgers", need_id, entries):
                result = await self.ledgers.update_one(guard, with_outbox(update, entries))
            if result.matched_count == 1:
                await self._after_write({**doc, **change.set_fields, "rev": doc["rev"] + 1}, change)
                return change.result
            # Lost the race: back off a little (more with every loss) so contenders spread out.
            await asyncio.sleep(random.uniform(0, min(0.001 * attempt, 0.02)))

    async def _after_write(self, ledger: Ledger, change: LedgerChange[Any]) -> None:
        await self.copies.sync(ledger, change.changed())


def _focused_on(pledge_id: str) -> dict[str, Any]:
    """A projection of a ledger's scalars with only one of its pledges."""
    projection: dict[str, Any] = dict.fromkeys(LEDGER_SCALARS, 1)
    projection["pledges"] = {"$elemMatch": {"pledge_id": pledge_id}}
    return projection
