"""Retention without scanning history: what may be deleted is found through buckets of creation minutes.

When an item (a delivery, a message, an e-mail) is stored, its id is noted first in the bucket of its
creation minute (`retention`: `{_id: "<kind>/<minute>/<shard>", ids}`), and the bucket's name in the
directory of its day (`{_id: "<kind>/day/<date>", buckets}`). A sweep reads only what the cutoff passed
since the last sweep: the directories of those days, then those buckets, then their items — every read
by `_id` (the only lookup the local stand-in does not answer by scanning a whole collection). The store
deletes the items that are finished; the others (still pending, events not yet published) are carried
in `<kind>/carry` and looked at again by the next sweep. The cursor (`<kind>/cursor`) says up to which
minute the buckets were swept. A crash between the steps repeats a step: deleting twice is harmless.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ksbb_kit.outbox import PENDING
from pymongo import UpdateOne

from ksbb_notifier.adapters.mongo import Collection, Document

#: Buckets per minute: keeps one bucket's id list small when thousands of items are created a minute.
SHARDS = 8
#: Ids per read.
CHUNK = 1000
MINUTE = timedelta(minutes=1)
#: Deletes what may go among some item ids and returns the ones to keep for a later sweep.
Expire = Callable[[list[str]], Awaitable[list[str]]]


def minute_of(at: datetime) -> datetime:
    """The start of the minute `at` falls in (UTC)."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).replace(second=0, microsecond=0)


class RetentionBuckets:
    """The ids of one kind of item by creation minute, and the sweep that expires them."""

    def __init__(self, collection: Collection, kind: str) -> None:
        self._buckets = collection
        self._kind = kind

    def _bucket(self, minute: datetime, item_id: str) -> str:
        return f"{self._kind}/{minute:%Y-%m-%dT%H:%M}/{zlib.crc32(item_id.encode()) % SHARDS}"

    def _day(self, minute: datetime) -> str:
        return f"{self._kind}/day/{minute:%Y-%m-%d}"

    async def note(self, items: Sequence[tuple[str, datetime]]) -> None:
        """Note items (id, creation time) before they are stored (noting one twice is harmless)."""
        writes = self.note_writes(items)
        if writes:
            await self._buckets.bulk_write(writes, ordered=False)

    @property
    def collection(self) -> Collection:
        """The collection the buckets live in (several kinds' notes may go out in one write)."""
        return self._buckets

    def note_writes(self, items: Sequence[tuple[str, datetime]]) -> list[UpdateOne]:
        """The writes that note these items (what `note` sends), for a caller that sends several kinds at once."""
        buckets: dict[str, list[str]] = {}
        days: dict[str, set[str]] = {}
        for item_id, created_at in items:
            minute = minute_of(created_at)
            bucket = self._bucket(minute, item_id)
            buckets.setdefault(bucket, []).append(item_id)
            days.setdefault(self._day(minute), set()).add(bucket)
        if not buckets:
            return []
        earliest = min(minute_of(created_at) for _, created_at in items)
        writes = [UpdateOne({"_id": b}, {"$push": {"ids": {"$each": ids}}}, upsert=True) for b, ids in buckets.items()]
        writes += [UpdateOne({"_id": d}, {"$addToSet": {"buckets": {"$each": sorted(b)}}}, upsert=True)
                   for d, b in days.items()]
        # The cursor never passes a noted item: an item older than the cursor moves it back (the sweep then
        # reads the minutes from there again, whose buckets are gone but this one).
        writes.append(UpdateOne({"_id": f"{self._kind}/cursor"}, {"$min": {"at": earliest}}, upsert=True))
        return writes

    async def adopt(self, items: Collection) -> None:
        """Note the items stored before these buckets existed (once: one pass over them, at the first start)."""
        if await self._buckets.find_one({"_id": f"{self._kind}/cursor"}) is not None:
            return
        await self.note([(d["_id"], d["created_at"]) async for d in items.find({}, {"created_at": 1})
                         if d.get("created_at")])

    async def sweep(self, cutoff: datetime, expire: Expire) -> None:
        """Expire the items of every whole minute before `cutoff` not swept yet, and the carried ones."""
        cursor_id, carry_id = f"{self._kind}/cursor", f"{self._kind}/carry"
        cursor = await self._buckets.find_one({"_id": cursor_id})
        start = minute_of(cursor["at"]) if cursor else None
        end = minute_of(cutoff)  # buckets before this minute hold only items created before the cutoff
        days: list[str] = []
        if start is not None:
            day = start.replace(hour=0, minute=0)
            while day < end:
                days.append(self._day(day))
                day += timedelta(days=1)
        directories = await self._read([*days, carry_id])
        carried = directories.pop(carry_id, {}).get("ids", [])
        names = [
            name for directory in directories.values() for name in directory.get("buckets", [])
            if start is not None and start <= _minute_of_bucket(name) < end
        ]
        buckets = await self._read(names)
        ids = list(dict.fromkeys([*carried, *(i for b in buckets.values() for i in b.get("ids", []))]))
        kept = await expire(ids) if ids else []
        await self._buckets.update_one({"_id": carry_id}, {"$set": {"ids": kept}}, upsert=True)
        if names:
            await self._buckets.delete_many({"_id": {"$in": names}})
        passed = [self._day(day) for day in _days_before(start, end)] if start is not None else []
        if passed:
            await self._buckets.delete_many({"_id": {"$in": passed}})
        if start is not None and end > start:
            await self._buckets.update_one({"_id": cursor_id}, {"$set": {"at": end}})

    async def _read(self, ids: Sequence[str]) -> dict[str, Document]:
        found: dict[str, Any] = {}
        for at in range(0, len(ids), CHUNK):
            async for doc in self._buckets.find({"_id": {"$in": list(ids[at:at + CHUNK])}}):
                found[doc["_id"]] = doc
        return found


def _minute_of_bucket(name: str) -> datetime:
    """The minute in a bucket's name (`<kind>/<minute>/<shard>`)."""
    return datetime.strptime(name.split("/")[1], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)


def _days_before(start: datetime, end: datetime) -> list[datetime]:
    """The days from `start`'s that end by `end` (their directories are no longer needed)."""
    days, day = [], start.replace(hour=0, minute=0)
    while day + timedelta(days=1) <= end:
        days.append(day)
        day += timedelta(days=1)
    return days


async def read_by_id(collection: Collection, ids: Sequence[str], projection: Document) -> list[Document]:
    """The documents among these ids that exist (by `_id` alone, a chunk at a time)."""
    found: list[Document] = []
    for at in range(0, len(ids), CHUNK):
        found += await collection.find({"_id": {"$in": list(ids[at:at + CHUNK])}}, projection).to_list(None)
    return found


async def delete_finished(
    collection: Collection, ids: Sequence[str], *, finished: Sequence[str], cutoff: datetime, fields: Sequence[str] = ()
) -> tuple[int, list[Document]]:
    """Delete the documents among `ids` that are finished (`status` in `finished`), were created before
    `cutoff` and carry no unpublished events; how many went, and the documents kept (with `fields`)."""
    found = await read_by_id(collection, ids, {"status": 1, "created_at": 1, PENDING: 1, **dict.fromkeys(fields, 1)})
    going = [d for d in found if d.get("status") in finished and d["created_at"] < cutoff and not d.get(PENDING)]
    kept = [d for d in found if d not in going]
    # Each delete checks the document is still finished (by `_id`, so the stand-in does not scan): one
    # redelivered meanwhile stays.
    guard = {"status": {"$in": list(finished)}, PENDING: {"$ne": True}}
    deleted = 0
    for at in range(0, len(going), CHUNK // 5):
        chunk = going[at:at + CHUNK // 5]
        gone = await asyncio.gather(*(
            collection.find_one_and_delete({"_id": d["_id"], **guard}, projection={"_id": 1}) for d in chunk
        ))
        deleted += sum(1 for g in gone if g is not None)
        kept += [d for d, g in zip(chunk, gone, strict=True) if g is None]
    return deleted, kept
