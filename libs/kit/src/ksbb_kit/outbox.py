"""Transactional outbox without transactions: pending events live inside the aggregate document.

A state change and the events it causes are one single-document write (`with_outbox`/`new_document`).
Before that write the writer leaves a small *marker* (`_outbox_markers`, one document per aggregate with
pending work), and after it the writer hands the aggregate's id to the relay (`OutboxRelay.pending`), which
publishes its events right away (fast path) and then removes the marker. A crash at any point leaves a
marker behind; the relay's sweep reads only that small collection — never the aggregates — so an idle
service touches no history. Publishing uses the idempotent producer and pulls exactly the entries sent; a
crash before the pull republishes the same event ids, which idempotent consumers ignore. See ADR 0004.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ksbb_contracts import CONTENT_TYPE, TYPE_HEADER, CloudEvent, Event
from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ksbb_kit.calm import RepeatingFailure
from ksbb_kit.clock import Clock, SystemClock
from ksbb_kit.ids import new_id
from ksbb_kit.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_PENDING_AGE, OUTBOX_PUBLISHED
from ksbb_kit.tracing import current_traceparent, request_id_extension
from ksbb_kit.wakeup import woken

log = logging.getLogger(__name__)
PENDING = "_outbox_pending"
OUTBOX = "_outbox"
#: Where a relay's lease used to live on the aggregate (older documents may still carry it).
LEASE = "_outbox_lease"
#: One small document per aggregate that may have unpublished events: `{_id: "<collection>/<id>", c, d,
#: open, epoch, at, lease, holder}`. `open` counts writers whose events are not yet published.
MARKERS = "_outbox_markers"
#: Unpublished events older than this are looked for by the sweep even when their writer still runs.
DEFAULT_MARKER_GRACE_SECONDS = 120.0
#: A relay pass with at most this many published documents pulls their entries one command each, in parallel.
PULL_ONE_BY_ONE_AT_MOST = 4


class RecordPublisher(Protocol):
    """Sends one Kafka record and returns once the broker acknowledged it (acks=all)."""

    async def send(
        self, topic: str, key: str | bytes | None, value: bytes | None, headers: Mapping[str, str | bytes],
    ) -> None:
        """Publish one record (a dead letter may carry a key or header values that are not UTF-8, as bytes)."""
        ...


#: `pending(collection, doc_id, entries)`: the block around a write that adds `entries` to one document
#: (`None`: entries not decided yet, e.g. before waiting for a lock — the document is marked all the same).
PendingWrite = Callable[[str, Any, Sequence[dict[str, Any]] | None], AbstractAsyncContextManager[None]]


def envelope_for(event: Event, *, source: str, clock: Clock, event_id: str | None = None) -> CloudEvent:
    """Wrap an event's data in its CloudEvents envelope."""
    return CloudEvent(
        id=event_id or new_id("evt"),
        source=source,
        type=event.event_type,
        subject=event.subject,
        time=clock.now(),
        traceparent=current_traceparent(),
        data=event.model_dump(mode="json"),
        **request_id_extension(),  # CloudEvents extension `requestid`: the action that caused the event
    )


def outbox_entries(events: Iterable[Event], *, source: str, clock: Clock) -> list[dict[str, Any]]:
    """Pending-event records to embed in an aggregate document."""
    entries = []
    for event in events:
        envelope = envelope_for(event, source=source, clock=clock)
        entries.append({
            "id": envelope.id,
            "topic": event.topic.name,
            "key": envelope.subject,
            "type": envelope.type,
            "value": envelope.to_bytes().decode(),
        })
    return entries


def tombstone_entry(topic_name: str, key: str) -> dict[str, Any]:
    """A pending tombstone (null value) that erases a key on a compacted topic."""
    return {"id": new_id("tomb"), "topic": topic_name, "key": key, "type": "tombstone", "value": None}


def with_outbox(update: dict[str, Any], entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add pending events to a MongoDB update document (same atomic write as the state change)."""
    if not entries:
        return update
    merged = copy.deepcopy(update)
    merged.setdefault("$push", {})[OUTBOX] = {"$each": list(entries)}
    merged.setdefault("$set", {})[PENDING] = True
    return merged


def new_document(document: dict[str, Any], entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A document to insert together with its first pending events."""
    return {**document, OUTBOX: list(entries), PENDING: bool(entries)}


def strip_outbox(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """A document without the outbox bookkeeping fields."""
    if document is None:
        return None
    return {k: v for k, v in document.items() if k not in (OUTBOX, PENDING, LEASE)}


def marker_id(collection: str, doc_id: Any) -> str:
    """The marker of one aggregate document."""
    return f"{collection}/{doc_id}"


@dataclass(frozen=True)
class Mark:
    """One writer's note that a document is about to get pending events; released once they are published."""

    collection: str
    doc_id: Any
    epoch: str

    @property
    def marker(self) -> str:
        """The marker's id."""
        return marker_id(self.collection, self.doc_id)


@dataclass
class _Work:
    """One aggregate a relay pass publishes: its marker as claimed, and this process's marks on it."""

    doc_id: Any
    marks: list[Mark] = field(default_factory=list)
    marker: dict[str, Any] | None = None
    sent: list[str] = field(default_factory=list)
    clean: bool = False


class OutboxRelay:
    """Publishes pending events: at once for documents this process wrote, through the markers after a crash.

    Writers call `pending(collection, doc_id, entries)` around their write (or `mark` before and `written`
    after it). The relay claims a marker with a lease (one relay per aggregate at a time, so events keep
    their order), reads the aggregate by `_id`, publishes its entries in order, pulls them, and releases
    the marker when the aggregate has nothing left. Every query reads the aggregates by `_id` only; the
    only collection ever searched is the small marker collection.
    """

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        collections: Sequence[str],
        publisher: RecordPublisher,
        *,
        topic_prefix: str = "",
        sweep_seconds: float = 5.0,
        lease_seconds: float = 30.0,
        marker_grace_seconds: float = DEFAULT_MARKER_GRACE_SECONDS,
        batch_size: int = 200,
        clock: Clock | None = None,
    ) -> None:
        self._db = db
        self._markers = db[MARKERS]
        self._collections = list(collections)
        self._publisher = publisher
        self._prefix = topic_prefix
        self._sweep = sweep_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._grace = timedelta(seconds=marker_grace_seconds)
        self._batch = batch_size
        # Leases and marker ages are operational time, never a test's frozen business clock.
        self._clock = clock or SystemClock()
        self._wakeup = asyncio.Event()
        #: marker id -> marks of writes this process finished whose events are not yet published
        self._due: dict[str, list[Mark]] = {}
        self._failures = RepeatingFailure(log, "outbox relay pass failed", with_traceback=True)

    # -- the write path ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def pending(
        self, collection: str, doc_id: Any, entries: Sequence[dict[str, Any]] | None
    ) -> AsyncIterator[None]:
        """Wrap the write that adds `entries` to a document: marked before, published right after.

        Nothing happens for no entries; `None` says they are not known yet (a decision still to be made
        inside the block), so the document is marked anyway. The document is handed to the relay even when
        the write fails or adds nothing (it may still have been applied); the relay finds out by reading it.
        """
        if entries is not None and not entries:
            yield
            return
        marks = await self.mark(collection, [doc_id])
        try:
            yield
        finally:
            self.written(marks)

    async def mark(self, collection: str, doc_ids: Sequence[Any]) -> list[Mark]:
        """Leave a marker for each document before writing pending events into it (one round trip for one)."""
        if collection not in self._collections:
            raise ValueError(f"{collection!r} is not an outbox collection of this relay ({self._collections})")
        now = self._now()
        ids = list(dict.fromkeys(doc_ids))
        if len(ids) == 1:
            return [await self._mark_one(collection, ids[0], now)]
        updates = {
            marker_id(collection, d): UpdateOne({"_id": marker_id(collection, d)}, _marking(collection, d, now),
                                                upsert=True)
            for d in ids
        }
        todo = list(updates.values())
        for _ in range(5):
            try:
                await self._markers.bulk_write(todo, ordered=False)
                break
            except BulkWriteError as exc:
                # Two writers upserting one new marker at once: the loser's upsert fails and is simply redone.
                failed = [e for e in exc.details.get("writeErrors", []) if e.get("code") == 11000]
                if len(failed) != len(exc.details.get("writeErrors", [])) or not failed:
                    raise
                todo = [todo[e["index"]] for e in failed]
        else:
            raise RuntimeError("could not leave outbox markers")
        epochs = {m["_id"]: m["epoch"] async for m in self._markers.find({"_id": {"$in": list(updates)}}, {"epoch": 1})}
        return [Mark(collection, d, epochs[marker_id(collection, d)]) for d in ids]

    async def _mark_one(self, collection: str, doc_id: Any, now: datetime) -> Mark:
        update = _marking(collection, doc_id, now)
        for _ in range(5):
            try:
                marker = await self._markers.find_one_and_update(
                    {"_id": marker_id(collection, doc_id)}, update, upsert=True,
                    return_document=ReturnDocument.AFTER, projection={"epoch": 1},
                )
                if marker is not None:
                    return Mark(collection, doc_id, marker["epoch"])
            except DuplicateKeyError:
                continue  # another writer created the marker between our match and insert: increment theirs
        raise RuntimeError("could not leave an outbox marker")

    def written(self, marks: Iterable[Mark]) -> None:
        """The writes behind these marks are done: publish their documents now."""
        for mark in marks:
            self._due.setdefault(mark.marker, []).append(mark)
        self._wakeup.set()

    def wake(self) -> None:
        """Run a relay pass soon."""
        self._wakeup.set()

    # -- the relay -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Relay until cancelled: the fast path whenever woken, the marker sweep every `sweep_seconds`."""
        await self._adopt_unmarked()
        next_sweep = 0.0
        while True:
            self._wakeup.clear()
            failed = False
            try:
                await self.publish_written()
                if time.monotonic() >= next_sweep:
                    await self.sweep(settle=timedelta(seconds=self._sweep))
                    next_sweep = time.monotonic() + self._sweep
                self._failures.recovered()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures.failed(exc)
                failed = True
            soon = min(5.0, 0.1 * 2 ** min(self._failures.streak, 6))
            wait = max(0.0, next_sweep - time.monotonic())
            if failed:  # backs off even when the sweep is overdue: a failing pass must not spin
                wait = soon
            elif self._due:  # documents another relay holds: try again soon
                wait = min(wait, soon)
            await woken(self._wakeup, wait)

    async def drain(self) -> int:
        """Publish everything pending now, written here or left by anyone; returns how many events were sent."""
        return await self.publish_written() + await self.sweep(settle=timedelta(0))

    async def publish_written(self) -> int:
        """Publish the documents this process wrote (the fast path); returns how many events were sent."""
        due, self._due = self._due, {}
        by_collection: dict[str, dict[str, _Work]] = {}
        for marker, marks in due.items():
            by_collection.setdefault(marks[0].collection, {})[marker] = _Work(marks[0].doc_id, list(marks))
        sent = 0
        try:
            for collection, work in by_collection.items():
                for chunk in _chunks(list(work.items()), self._batch):
                    sent += await self._relay(collection, dict(chunk))
        finally:
            for work in by_collection.values():
                for marker, item in work.items():
                    if not item.clean:  # leased by another relay, failed, or more events arrived meanwhile
                        self._due.setdefault(marker, []).extend(item.marks)
        return sent

    async def sweep(self, *, settle: timedelta) -> int:
        """Publish what markers older than `settle` point at and drop markers with nothing behind them."""
        cutoff = self._now() - settle
        sent, after = 0, None
        while True:
            query: dict[str, Any] = {"at": {"$lte": cutoff}}
            if after is not None:
                query["_id"] = {"$gt": after}
            page = await self._markers.find(query, {"c": 1, "d": 1}).sort("_id", ASCENDING).to_list(self._batch)
            if not page:
                return sent
            after = page[-1]["_id"]
            by_collection: dict[str, dict[str, _Work]] = {}
            for marker in page:
                if marker.get("c") in self._collections:
                    by_collection.setdefault(marker["c"], {})[marker["_id"]] = _Work(marker["d"])
            for collection, work in by_collection.items():
                sent += await self._relay(collection, work)

    async def backlog(self) -> int:
        """Documents that may have unpublished events and the age of the oldest marker, per collection (metrics)."""
        counts = {name: 0 for name in self._collections}
        ages = {name: 0.0 for name in self._collections}
        now = self._now()
        grouped = [{"$group": {"_id": "$c", "n": {"$sum": 1}, "oldest": {"$min": "$at"}}}]
        async for row in await self._markers.aggregate(grouped):
            if row["_id"] in counts:
                counts[row["_id"]] = int(row["n"])
                if isinstance(row.get("oldest"), datetime):
                    ages[row["_id"]] = max(0.0, (now - _aware(row["oldest"])).total_seconds())
        for name, count in counts.items():
            OUTBOX_BACKLOG.labels(collection=name).set(count)
            OUTBOX_OLDEST_PENDING_AGE.labels(collection=name).set(ages[name])
        return sum(counts.values())

    async def _relay(self, collection: str, work: dict[str, _Work]) -> int:
        """One pass over some documents of one collection; marks each finished `_Work` clean."""
        token, now = new_id("lease"), self._now()
        existing = await self._claim(list(work), token, now)
        for marker, item in work.items():
            found = existing.get(marker)
            if found is not None and found.get("holder") == token:
                item.marker = found
            elif found is None and item.marks:
                # Our write's marker is gone (dropped by a sweep that saw nothing pending before a slow write
                # landed): mark again; the next pass claims and publishes it like any other.
                item.marks = await self.mark(collection, [item.doc_id])
        claimed = {marker: item for marker, item in work.items() if item.marker is not None}
        if not claimed:
            return 0
        try:
            return await self._publish_claimed(collection, claimed)
        finally:
            await self._release(claimed, token, now)

    async def _claim(self, markers: list[str], token: str, now: datetime) -> dict[str, dict[str, Any]]:
        """Lease the free markers among these; every one that still exists, as it is after the claim.

        One marker (the usual pass at low rates) is leased and read back in one command; more take two.
        """
        free = {"$or": [{"lease": {"$exists": False}}, {"lease": None}, {"lease": {"$lt": now}}]}
        lease = {"$set": {"lease": now + self._lease, "holder": token}}
        if len(markers) == 1:
            found = await self._markers.find_one_and_update(
                {"_id": markers[0], **free}, lease, return_document=ReturnDocument.AFTER
            )
            if found is None:  # leased by another relay, or gone
                found = await self._markers.find_one({"_id": markers[0]})
            return {} if found is None else {found["_id"]: found}
        await self._markers.update_many({"_id": {"$in": markers}, **free}, lease)
        return {m["_id"]: m async for m in self._markers.find({"_id": {"$in": markers}})}

    async def _pull_sent(self, aggregates: AsyncCollection[Any], published: list[_Work]) -> set[Any]:
        """Remove the sent entries from their documents; the ids of documents that still hold entries.

        `_id` only in every filter: an index lookup on any server. Clearing the flag here is safe: we hold the
        lease, writers only ever set it, and the caller sets it again where entries remain. A few documents
        (the usual pass at low rates) are pulled each with one command returning what is left, all at once:
        one round trip. Many (a busy pass) go in one bulk write and one read: two round trips, but not a
        command per document, which costs more CPU than the round trip saves at high rates.
        """
        if not published:
            return set()
        if len(published) <= PULL_ONE_BY_ONE_AT_MOST:
            after_pull = await asyncio.gather(*(
                aggregates.find_one_and_update(
                    {"_id": item.doc_id}, {"$pull": {OUTBOX: {"id": {"$in": item.sent}}}, "$set": {PENDING: False}},
                    projection={OUTBOX: 1}, return_document=ReturnDocument.AFTER,
                )
                for item in published
            ))
            return {d["_id"] for d in after_pull if d is not None and d.get(OUTBOX)}
        await aggregates.bulk_write([
            UpdateOne({"_id": item.doc_id}, {"$pull": {OUTBOX: {"id": {"$in": item.sent}}}, "$set": {PENDING: False}})
            for item in published
        ], ordered=False)
        ids = [item.doc_id for item in published]
        return {d["_id"] async for d in aggregates.find({"_id": {"$in": ids}}, {OUTBOX: 1}) if d.get(OUTBOX)}

    async def _publish_claimed(self, collection: str, claimed: dict[str, _Work]) -> int:
        aggregates = self._db[collection]
        ids = [item.doc_id for item in claimed.values()]
        entries = {d["_id"]: d.get(OUTBOX) or [] async for d in aggregates.find({"_id": {"$in": ids}}, {OUTBOX: 1})}
        outcomes = await asyncio.gather(
            *(self._send_in_order(entries.get(item.doc_id, []), item) for item in claimed.values()),
            return_exceptions=True,
        )
        published = [item for item in claimed.values() if item.sent]
        remaining = await self._pull_sent(aggregates, published)
        if remaining:
            await aggregates.update_many({"_id": {"$in": list(remaining)}}, {"$set": {PENDING: True}})
        for item, outcome in zip(claimed.values(), outcomes, strict=True):
            failed = isinstance(outcome, BaseException)
            item.clean = not failed and item.doc_id not in remaining
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise errors[0]
        return sum(len(item.sent) for item in claimed.values())

    async def _send_in_order(self, entries: list[dict[str, Any]], item: _Work) -> None:
        for entry in entries:
            value = entry["value"].encode() if entry["value"] is not None else None
            # Structured mode: the value is the whole event; the type header sits outside `ce_` (ADR 0001).
            headers = {"content-type": CONTENT_TYPE, TYPE_HEADER: entry["type"]} if value is not None else {}
            trace = _traceparent_of(entry)
            if trace:
                headers["traceparent"] = trace
            await self._publisher.send(self._prefix + entry["topic"], entry["key"], value, headers)
            item.sent.append(entry["id"])
            OUTBOX_PUBLISHED.labels(topic=entry["topic"]).inc()

    async def _release(self, claimed: dict[str, _Work], token: str, claimed_at: datetime) -> None:
        """Give the leases back; drop the markers of clean documents no writer still holds."""
        if len(claimed) == 1 and await self._drop_only_writer(*next(iter(claimed.items()))):
            return
        decrements = []
        removable: list[dict[str, Any]] = []
        old = claimed_at - self._grace
        for marker, item in claimed.items():
            assert item.marker is not None
            epoch = item.marker["epoch"]
            if not item.clean:
                continue
            mine = sum(1 for mark in item.marks if mark.epoch == epoch)
            if mine:
                decrements.append(UpdateOne({"_id": marker, "epoch": epoch}, {"$inc": {"open": -mine}}))
            removable.append({"_id": marker, "epoch": epoch, "open": {"$lte": 0}})
            if _aware(item.marker["at"]) < old:
                # No writer marked it for a whole grace period and nothing is pending: whatever write was
                # announced has landed (or never will, after a crash) and has been published.
                removable.append({"_id": marker, "epoch": epoch, "at": item.marker["at"]})
        if decrements:
            await self._markers.bulk_write(decrements, ordered=False)
        # Dropping a marker and giving its lease back do not depend on each other's order: both at once.
        await asyncio.gather(
            *([self._markers.delete_many({"$or": removable})] if removable else []),
            self._markers.update_many(
                {"_id": {"$in": list(claimed)}, "holder": token}, {"$unset": {"lease": "", "holder": ""}}
            ),
        )

    async def _drop_only_writer(self, marker: str, item: _Work) -> bool:
        """Drop the marker of one clean document when its open writers are all ours (one command).

        The same as counting our writers out and then dropping a marker left with none open, the usual end
        of a pass at low rates; False when other writers still hold it (then the general path runs).
        """
        assert item.marker is not None
        epoch = item.marker["epoch"]
        mine = sum(1 for mark in item.marks if mark.epoch == epoch)
        if not item.clean or not mine:
            return False
        dropped = await self._markers.delete_one({"_id": marker, "epoch": epoch, "open": {"$lte": mine}})
        return dropped.deleted_count == 1

    async def _adopt_unmarked(self) -> None:
        """Leave markers for documents whose events were written before markers existed (once per start)."""
        for name in self._collections:
            ids = [d["_id"] async for d in self._db[name].find({PENDING: True}, {"_id": 1})]
            for chunk in _chunks(ids, self._batch):
                self.written(await self.mark(name, chunk))

    def _now(self) -> datetime:
        # Millisecond precision: what the database stores, so a marker's `at` compares equal when read back.
        now = self._clock.now()
        return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _marking(collection: str, doc_id: Any, now: datetime) -> dict[str, Any]:
    """The update that leaves (or renews) a marker: one more open write, marked now."""
    return {"$inc": {"open": 1}, "$set": {"at": now},
            "$setOnInsert": {"c": collection, "d": doc_id, "epoch": new_id("obm")}}


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _traceparent_of(entry: dict[str, Any]) -> str | None:
    if entry.get("value") is None:
        return None
    try:
        return CloudEvent.from_bytes(entry["value"].encode()).traceparent
    except ValueError:
        return None
