"""What the notifier's MongoDB stores share: idempotent inserts, leases and the outbox hook."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ksbb_contracts import Event
from ksbb_kit.outbox import PendingWrite
from pymongo import DeleteOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

#: "Not leased": a lease time every claim filter treats as expired (no nulls in range filters).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: An entry whose item is not stored yet (its writer puts the entry first) is looked at again this much later...
MISSING_ITEM_RECHECK = timedelta(milliseconds=50)
#: ...and dropped once its item has been missing this long (a writer that crashed between the two writes).
MISSING_ITEM_GRACE = timedelta(minutes=10)
DUPLICATE_KEY = 11000

Document = dict[str, Any]
Collection = AsyncCollection[Document]
#: Turns events into outbox entries to embed in the same write (the runtime's `events`).
OutboxEntries = Callable[..., list[dict[str, Any]]]


async def insert_ignoring_duplicates(collection: Collection, documents: Sequence[Document]) -> int:
    """Insert documents with deterministic ids; ones that already exist are left alone (idempotent)."""
    if not documents:
        return 0
    try:
        result = await collection.insert_many(list(documents), ordered=False)
        return len(result.inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return int(exc.details.get("nInserted", 0))


async def insert_new(collection: Collection, documents: Sequence[Document]) -> list[Any]:
    """Insert documents with deterministic ids, leaving the ones that exist alone; the ids that were new."""
    if not documents:
        return []
    try:
        result = await collection.insert_many(list(documents), ordered=False)
        return list(result.inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        existing = {e["index"] for e in errors}
        return [d["_id"] for index, d in enumerate(documents) if index not in existing]


def due_filter(now: datetime) -> Document:
    """Pending documents due now whose lease (if any) has run out."""
    return {"status": "pending", "next_attempt_at": {"$lte": now}, "leased_until": {"$lt": now}}


def lease_guard(document_id: str, lease_token: str | None) -> Document:
    """Matches a document only while the given lease still holds it."""
    return {"_id": document_id, "lease_token": lease_token}


async def update_by_id(collection: Collection, guard: Document, update: Document) -> bool:
    """Update the one document `guard` names by `_id` (and holds only while the rest of `guard` matches);
    whether it matched. A findAndModify: servers that scan a whole collection for an update whose filter
    has more than `_id` (the local stand-in) still find a findAndModify's document by `_id`."""
    return await collection.find_one_and_update(guard, update, projection={"_id": 1}) is not None


class DueIndex:
    """Work that may be due: one small document per pending item (`_id`, `at`, `endpoint_id`).

    The delivery and e-mail loops poll this collection, never the deliveries' or e-mails' history, so an idle
    poll reads an empty collection. An entry is written before its item can be pending and removed after
    the item is finished; an entry that is early or stale (a crash between the two writes) is corrected
    when the claim finds it so — an item is never pending without an entry.
    """

    def __init__(self, collection: Collection) -> None:
        self._entries = collection

    async def put(self, entries: Sequence[Document]) -> None:
        """Add or move entries (`_id`, `at` and any fields to filter on)."""
        if entries:
            await self._entries.bulk_write(
                [UpdateOne({"_id": e["_id"]}, {"$set": e}, upsert=True) for e in entries], ordered=False
            )

    async def apply(self, writes: Sequence[UpdateOne | DeleteOne]) -> None:
        """Entry moves and removals made by the caller (`UpdateOne` upserts, `DeleteOne`s), in one write."""
        if writes:
            await self._entries.bulk_write(list(writes), ordered=False)

    async def remove(self, item_ids: Sequence[str]) -> None:
        """Forget finished items."""
        if item_ids:
            await self._entries.delete_many({"_id": {"$in": list(item_ids)}})

    async def due(
        self, now: datetime, limit: int, exclude_endpoints: Sequence[str] = (), exclude_ids: Sequence[str] = ()
    ) -> list[Document]:
        """Entries due by `now`, in the order they were queued (not sorted: a sort reads every due entry, and
        a backlog is exactly when that costs most; the query stops at `limit` without one). `exclude_ids`:
        items the caller holds already (leased, in progress)."""
        query: Document = {"at": {"$lte": now}}
        if exclude_endpoints:
            query["endpoint_id"] = {"$nin": list(exclude_endpoints)}
        if exclude_ids:
            query["_id"] = {"$nin": list(exclude_ids)}
        return await self._entries.find(query).limit(limit).to_list(limit)

    async def correct(self, items: Collection, entries: Sequence[Document], now: datetime) -> None:
        """Entries (as `due` returned them) whose item could not be claimed: drop them if the item is finished
        or long gone, else move them to when the item is due (after its lease). Only entries nobody moved since
        they were read change: a writer that moved one meanwhile knows better.

        An item not found may not be stored yet: its writer puts the entry first and inserts the item right
        after, so such an entry is looked at again shortly and only dropped after `MISSING_ITEM_GRACE`
        (dropping it at once lost the item: pending for ever with no entry pointing at it)."""
        if not entries:
            return
        projection = {"status": 1, "next_attempt_at": 1, "leased_until": 1}
        found = {d["_id"]: d async for d in items.find({"_id": {"$in": [e["_id"] for e in entries]}}, projection)}
        operations: list[Any] = []
        for entry in entries:
            item = found.get(entry["_id"])
            seen = {"_id": entry["_id"], "at": entry["at"]}
            if item is None and (entry.get("missing_since") or now) > now - MISSING_ITEM_GRACE:
                operations.append(UpdateOne(seen, {"$set": {"at": now + MISSING_ITEM_RECHECK},
                                                   "$min": {"missing_since": now}}))
            elif item is None or item.get("status") != "pending":
                operations.append(DeleteOne(seen))
            else:
                due_at = max(item["next_attempt_at"], item.get("leased_until") or EPOCH)
                operations.append(UpdateOne(seen, {"$set": {"at": due_at}}))
        await self._entries.bulk_write(operations, ordered=False)

    async def adopt(self, items: Collection, fields: Sequence[str] = ()) -> None:
        """Entries for pending items stored before this index existed (once per start)."""
        projection = {"next_attempt_at": 1, **dict.fromkeys(fields, 1)}
        await self.put([{"_id": d["_id"], "at": d["next_attempt_at"], **{f: d.get(f) for f in fields}}
                        async for d in items.find({"status": "pending"}, projection)])


class Outbox:
    """How a store embeds events in its writes: entries from the runtime, and the relay's `pending` block
    around the write (a marker before it, publishing right after it)."""

    def __init__(self, entries: OutboxEntries, pending: PendingWrite) -> None:
        self.entries = entries
        self.pending = pending

    def entries_for(self, events: Sequence[Event]) -> list[dict[str, Any]]:
        """Outbox entries of the events (none for none)."""
        return self.entries(*events) if events else []
