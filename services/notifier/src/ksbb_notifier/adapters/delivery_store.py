"""MongoDB store of messages and deliveries (`deliveries` carries `delivery_failed` events): queue and log.

Attempts that finish together are recorded together: the records of outcomes without events (a success,
a retry scheduled) that arrive within one turn of the event loop are sent at once, and their due-index
moves go out as one bulk write. Each record stays guarded by its own lease token (a findAndModify by
`_id` and token: the local stand-in scans a whole collection for an update with more than `_id` in its
filter, but finds a findAndModify's document by `_id`), and each caller returns only once its write is done.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from ksbb_kit.outbox import with_outbox
from pymongo import ASCENDING, DESCENDING, DeleteOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_notifier.adapters.mongo import (
    EPOCH,
    Document,
    DueIndex,
    Outbox,
    due_filter,
    insert_ignoring_duplicates,
    insert_new,
    lease_guard,
    update_by_id,
)
from ksbb_notifier.adapters.retention import RetentionBuckets, delete_finished, read_by_id
from ksbb_notifier.domain.deliveries import (
    AttemptLogEntry,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    DueDelivery,
    Message,
)

#: Statuses of a delivery that is done (the retention sweep may delete it).
FINISHED = (DeliveryStatus.SUCCEEDED.value, DeliveryStatus.FAILED.value)
#: What releases a lease.
UNLEASED = {"leased_until": EPOCH, "lease_token": None}


def message_document(message: Message) -> Document:
    """The stored form of a message."""
    return {
        "_id": message.id,
        "type": message.type,
        "timestamp": message.timestamp,
        "data": message.data,
        "organisation_id": message.organisation_id,
        "created_at": message.created_at,
    }


def message_from(doc: Document) -> Message:
    """A message from its stored form."""
    return Message(
        doc["_id"], doc["type"], doc["timestamp"], doc["data"], doc.get("organisation_id"), doc["created_at"]
    )


def delivery_document(delivery: Delivery) -> Document:
    """The stored form of a new delivery (not leased)."""
    return {
        "_id": delivery.id,
        "message_id": delivery.message_id,
        "endpoint_id": delivery.endpoint_id,
        "organisation_id": delivery.organisation_id,
        "event_type": delivery.event_type,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "round_attempts": delivery.round_attempts,
        "next_attempt_at": delivery.next_attempt_at,
        **UNLEASED,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
        "attempt_log": [asdict(entry) for entry in delivery.attempt_log],
    }


def delivery_from(doc: Document) -> Delivery:
    """A delivery from its stored form."""
    return Delivery(
        id=doc["_id"],
        message_id=doc["message_id"],
        endpoint_id=doc["endpoint_id"],
        organisation_id=doc.get("organisation_id"),
        event_type=doc["event_type"],
        status=DeliveryStatus(doc["status"]),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        next_attempt_at=doc.get("next_attempt_at"),
        attempts=doc.get("attempts", 0),
        round_attempts=doc.get("round_attempts", 0),
        failure_reason=doc.get("failure_reason"),
        last_status_code=doc.get("last_status_code"),
        attempt_log=tuple(AttemptLogEntry(**entry) for entry in doc.get("attempt_log", [])),
        lease_token=doc.get("lease_token"),
    )


class MongoDeliveryStore:
    """Messages and deliveries in MongoDB; every change to a leased delivery is guarded by its lease token."""

    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._messages = db["messages"]
        self._deliveries = db["deliveries"]
        self._outbox = outbox
        #: Pending deliveries only: what the dispatcher's poll reads (see `DueIndex`).
        self._due = DueIndex(db["delivery_due"])
        #: The entries the last `due` returned: `claim` corrects those it could not win.
        self._seen_due: dict[str, Document] = {}
        #: Deliveries this instance leased and has not finished, with their lease's end: until then their
        #: due entries are not due for it (an attempt that crashed is looked for again once its lease ran out).
        self._holding: dict[str, datetime] = {}
        #: Attempt records waiting for the next group write, each with the future its caller awaits.
        self._recording: list[tuple[Document, Document, UpdateOne | DeleteOne, asyncio.Future[None]]] = []
        self._recorder: asyncio.Task[None] | None = None
        #: Deliveries and messages by creation minute: what the retention sweep reads (`RetentionBuckets`).
        self._retained_deliveries = RetentionBuckets(db["retention"], "deliveries")
        self._retained_messages = RetentionBuckets(db["retention"], "messages")

    async def create_indexes(self) -> None:
        """Indexes for the claim query and the delivery log."""
        await self._deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self._deliveries.create_index([("endpoint_id", ASCENDING), ("created_at", DESCENDING)])
        await self._due.adopt(self._deliveries, ["endpoint_id", "created_at"])
        await self._retained_deliveries.adopt(self._deliveries)
        await self._retained_messages.adopt(self._messages)

    # -- fan-out and API -------------------------------------------------------------------------

    async def add_message(self, message: Message) -> None:
        """Store a message; one that exists already is left alone."""
        await self._retained_messages.note([(message.id, message.created_at)])
        await insert_ignoring_duplicates(self._messages, [message_document(message)])

    async def add_messages(self, messages: Sequence[Message]) -> None:
        """Store messages in one write; ones that exist already are left alone."""
        await self._retained_messages.note([(m.id, m.created_at) for m in messages])
        await insert_ignoring_duplicates(self._messages, [message_document(m) for m in messages])

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Store new deliveries; existing ones are left alone. How many were new."""
        await self._due.put([_due_entry(d.id, d.endpoint_id, d.next_attempt_at, d.created_at) for d in deliveries
                             if d.status is DeliveryStatus.PENDING])
        await self._retained_deliveries.note([(d.id, d.created_at) for d in deliveries])
        return await insert_ignoring_duplicates(self._deliveries, [delivery_document(d) for d in deliveries])

    async def add_fan_out(
        self,
        messages: Sequence[Message],
        deliveries: Sequence[Delivery],
        *,
        lease_until: datetime | None = None,
        leased_ids: AbstractSet[str] = frozenset(),
    ) -> list[Delivery]:
        """Store messages and their new deliveries (existing ones are left alone); the deliveries that were new.

        Three round trips, not five: the retention notes of both (one write) and the deliveries' due entries go out
        together (each only has to precede its own item), then the messages, then the deliveries (after
        their messages, so a delivery claimed at once always finds its message).

        The new deliveries in `leased_ids` are stored leased to the caller until `lease_until` (one fresh token):
        its delivery loop sends them without a claim; other instances cannot claim them until the lease runs out.
        """
        notes = [*self._retained_messages.note_writes([(m.id, m.created_at) for m in messages]),
                 *self._retained_deliveries.note_writes([(d.id, d.created_at) for d in deliveries])]
        await _all(
            self._retained_messages.collection.bulk_write(notes, ordered=False) if notes else _nothing(),
            self._due.put([_due_entry(d.id, d.endpoint_id, d.next_attempt_at, d.created_at) for d in deliveries
                           if d.status is DeliveryStatus.PENDING]),
        )
        await insert_ignoring_duplicates(self._messages, [message_document(m) for m in messages])
        if not deliveries:
            return []
        if lease_until is not None and leased_ids:
            token = uuid.uuid4().hex
            deliveries = [replace(d, lease_token=token) if d.status is DeliveryStatus.PENDING and d.id in leased_ids
                          else d for d in deliveries]
            documents = [
                {**delivery_document(d), "leased_until": lease_until, "lease_token": token}
                if d.lease_token == token else delivery_document(d)
                for d in deliveries
            ]
        else:
            documents = [delivery_document(d) for d in deliveries]
        new_ids = set(await insert_new(self._deliveries, documents))
        new = [d for d in deliveries if d.id in new_ids]
        if lease_until is not None:
            for delivery in new:
                if delivery.lease_token is not None:
                    self._holding[delivery.id] = lease_until
        return new

    async def page(
        self,
        endpoint_id: str,
        *,
        status: str | None,
        event_type: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Delivery]:
        """An endpoint's deliveries, newest first, strictly before a (created_at, id) position."""
        query: Document = {"endpoint_id": endpoint_id}
        if status:
            query["status"] = status
        if event_type:
            query["event_type"] = event_type
        if before is not None:
            created, last_id = before
            query["$or"] = [
                {"created_at": {"$lt": created}},
                {"created_at": created, "_id": {"$lt": last_id}},
            ]
        docs = await self._deliveries.find(query).sort([("created_at", -1), ("_id", -1)]).to_list(limit)
        return [delivery_from(d) for d in docs]

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """One delivery of one endpoint."""
        doc = await self._deliveries.find_one({"_id": delivery_id, "endpoint_id": endpoint_id})
        return delivery_from(doc) if doc is not None else None

    async def change(self, endpoint_id: str, delivery_id: str, changes: dict[str, Any]) -> Delivery | None:
        """Change one delivery of one endpoint; the changed delivery, or None if there is none."""
        if changes.get("status") == DeliveryStatus.PENDING.value:
            await self._due.put([_due_entry(delivery_id, endpoint_id, changes["next_attempt_at"], None)])
        doc = await self._deliveries.find_one_and_update(
            {"_id": delivery_id, "endpoint_id": endpoint_id},
            {"$set": changes},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None and changes.get("status") == DeliveryStatus.PENDING.value:
            # Its creation time, for the queue gauges (an entry already removed stays removed).
            await self._due.apply([UpdateOne({"_id": delivery_id}, {"$set": {"created_at": doc["created_at"]}})])
        return delivery_from(doc) if doc is not None else None

    async def requeue_failed(self, endpoint_id: str, since: datetime, changes: dict[str, Any]) -> int:
        """Requeue an endpoint's failed deliveries created at or after `since` (and drop stale leases)."""
        query = {"endpoint_id": endpoint_id, "status": "failed", "created_at": {"$gte": since}}
        found = {d["_id"]: d["created_at"] async for d in self._deliveries.find(query, {"_id": 1, "created_at": 1})}
        failed = list(found)
        await self._due.put([_due_entry(i, endpoint_id, changes["next_attempt_at"], found[i]) for i in failed])
        result = await self._deliveries.update_many(
            {"_id": {"$in": failed}}, {"$set": {**changes, "leased_until": EPOCH}}
        )
        return result.modified_count

    async def sweep_finished(self, cutoff: datetime) -> dict[str, int]:
        """Delete finished deliveries (events published) and the messages none still needs, before `cutoff`
        (read through their creation-minute buckets: the delivery history is never scanned)."""
        counts = {"deliveries": 0, "messages": 0}
        needed: set[str] = set()  # messages of the deliveries kept

        async def expire_deliveries(ids: list[str]) -> list[str]:
            deleted, kept = await delete_finished(
                self._deliveries, ids, finished=FINISHED, cutoff=cutoff, fields=["message_id"]
            )
            counts["deliveries"] += deleted
            needed.update(d["message_id"] for d in kept)
            return [d["_id"] for d in kept]

        async def expire_messages(ids: list[str]) -> list[str]:
            found = await read_by_id(self._messages, ids, {"created_at": 1})
            going = {d["_id"] for d in found if d["created_at"] < cutoff and d["_id"] not in needed}
            if going:
                counts["messages"] += (await self._messages.delete_many({"_id": {"$in": list(going)}})).deleted_count
            return [d["_id"] for d in found if d["_id"] not in going]

        # Deliveries first: a message goes once none of its deliveries is kept (they share a creation minute).
        await self._retained_deliveries.sweep(cutoff, expire_deliveries)
        await self._retained_messages.sweep(cutoff, expire_messages)
        return counts

    # -- the delivery loop -----------------------------------------------------------------------

    async def message(self, message_id: str) -> Message | None:
        """One message, or None."""
        doc = await self._messages.find_one({"_id": message_id})
        return message_from(doc) if doc is not None else None

    async def messages(self, message_ids: Sequence[str]) -> list[Message]:
        """The messages among these ids that exist (one read, by `_id` alone)."""
        if not message_ids:
            return []
        return [message_from(d) async for d in self._messages.find({"_id": {"$in": list(set(message_ids))}})]

    async def due(self, now: datetime, limit: int, exclude_endpoints: Sequence[str]) -> list[DueDelivery]:
        """Pending, unleased deliveries due now, oldest first, skipping saturated endpoints (from the due index)."""
        for expired in [i for i, until in self._holding.items() if until <= now]:
            del self._holding[expired]
        entries = await self._due.due(now, limit, exclude_endpoints, sorted(self._holding))
        self._seen_due = {e["_id"]: e for e in entries}
        return [DueDelivery(e["_id"], e["endpoint_id"]) for e in entries]

    async def claim(self, delivery_ids: Sequence[str], now: datetime, lease_until: datetime) -> list[Delivery]:
        """Lease those still due and unleased, in one write; the ones this call won.

        Every document is leased atomically on its own, so two instances never win the same one; one
        shared token per batch keeps it to two round-trips however many deliveries are claimed.
        """
        token = uuid.uuid4().hex
        ids = list(delivery_ids)
        if not ids:
            return []
        # Each lease is a findAndModify by `_id` and the due condition, all sent at once: it returns the
        # leased document, and servers that scan a collection for an update with more than `_id` in its
        # filter (the local stand-in; the collection holds every delivery the retention keeps) still
        # find it by `_id` (an update_many with `$in` would scan, too).
        lease = {"$set": {"leased_until": lease_until, "lease_token": token}}
        leased = await asyncio.gather(*(
            self._deliveries.find_one_and_update(
                {"_id": i, **due_filter(now)}, lease, return_document=ReturnDocument.AFTER
            )
            for i in ids
        ))
        won = [delivery_from(d) for d in leased if d is not None and d.get("lease_token") == token]
        lost = [self._seen_due.pop(i) for i in ids if i in self._seen_due and i not in {d.id for d in won}]
        for delivery in won:
            self._seen_due.pop(delivery.id, None)
            self._holding[delivery.id] = lease_until
        await self._due.correct(self._deliveries, lost, now)
        return won

    async def release(self, delivery: Delivery) -> None:
        """Give a lease back without changing anything else (shutdown)."""
        self._holding.pop(delivery.id, None)
        await update_by_id(self._deliveries, lease_guard(delivery.id, delivery.lease_token), {"$set": UNLEASED})

    async def postpone(self, delivery: Delivery, until: datetime) -> None:
        """Hand a leased delivery back, due again at `until`, without counting an attempt."""
        await update_by_id(
            self._deliveries, lease_guard(delivery.id, delivery.lease_token),
            {"$set": {"next_attempt_at": until, **UNLEASED}},
        )
        await self._due.put([_due_entry(delivery.id, delivery.endpoint_id, until, delivery.created_at)])
        self._holding.pop(delivery.id, None)

    async def settle(self, delivery: Delivery, changes: dict[str, Any]) -> None:
        """Change a leased delivery without an attempt and release the lease."""
        await update_by_id(
            self._deliveries, lease_guard(delivery.id, delivery.lease_token), {"$set": {**changes, **UNLEASED}}
        )
        await self._follow(delivery, changes)
        self._holding.pop(delivery.id, None)

    async def record_attempt(self, delivery: Delivery, outcome: AttemptOutcome, *, keep_attempts: int) -> None:
        """Store one attempt (the log keeps the last `keep_attempts`), its events, and release the lease."""
        entries = self._outbox.entries_for(outcome.events)
        update = with_outbox(
            {
                "$set": {**outcome.changes, **UNLEASED},
                "$inc": {"attempts": 1},
                "$push": {"attempt_log": {"$each": [asdict(outcome.log_entry)], "$slice": -keep_attempts}},
            },
            entries,
        )
        try:
            if not entries:
                await self._record_with_others(lease_guard(delivery.id, delivery.lease_token), update,
                                               self._following(delivery, outcome.changes))
                return
            async with self._outbox.pending("deliveries", delivery.id, entries):
                await update_by_id(self._deliveries, lease_guard(delivery.id, delivery.lease_token), update)
            await self._follow(delivery, outcome.changes)
        finally:
            # Written or not, this instance is done with it: a failed write leaves the lease to run out.
            self._holding.pop(delivery.id, None)

    async def _record_with_others(self, guard: Document, update: Document, follow: UpdateOne | DeleteOne) -> None:
        """Queue one attempt record for the next group write and wait until it is written."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._recording.append((guard, update, follow, done))
        if self._recorder is None:
            self._recorder = asyncio.create_task(self._write_recorded())
        await done

    async def _write_recorded(self) -> None:
        """Write every attempt record queued during this turn: the deliveries first, then their due entries."""
        await asyncio.sleep(0)  # attempts finishing in the same turn join this write
        batch, self._recording, self._recorder = self._recording, [], None
        failed: dict[int, Exception] = {}
        written = False
        try:
            # One findAndModify per record, all sent at once (by `_id` and lease token: see `claim`); one
            # record's failure is that record's alone.
            written_each = await asyncio.gather(
                *(self._deliveries.find_one_and_update(g, u, projection={"_id": 1}) for g, u, _, _ in batch),
                return_exceptions=True,
            )
            for index, outcome in enumerate(written_each):
                if isinstance(outcome, BaseException):
                    failed[index] = RuntimeError(f"attempt record not written: {outcome}")
            await self._due.apply([follow for i, (_, _, follow, _) in enumerate(batch) if i not in failed])
            written = True
        except Exception as exc:
            failed = dict.fromkeys(range(len(batch)), exc)
        finally:
            for index, (_, _, _, done) in enumerate(batch):
                if done.done():
                    continue
                if index in failed:
                    done.set_exception(failed[index])
                elif written:
                    done.set_result(None)
                else:
                    done.cancel()  # stopped mid-write: the lease runs out and the delivery is tried again

    async def _follow(self, delivery: Delivery, changes: dict[str, Any]) -> None:
        """Move the delivery's due entry after a change: to its next attempt, or away once it is finished.
        (After the write: a crash in between leaves an early or stale entry, which a claim corrects.)"""
        await self._due.apply([self._following(delivery, changes)])

    @staticmethod
    def _following(delivery: Delivery, changes: dict[str, Any]) -> UpdateOne | DeleteOne:
        """The due-index write that follows a change of a delivery."""
        if changes.get("status", delivery.status.value) == DeliveryStatus.PENDING.value:
            at = changes.get("next_attempt_at", delivery.next_attempt_at)
            entry = _due_entry(delivery.id, delivery.endpoint_id, at, delivery.created_at)
            return UpdateOne({"_id": entry["_id"]}, {"$set": entry}, upsert=True)
        return DeleteOne({"_id": delivery.id})


async def _nothing() -> None:
    """No write."""


async def _all(*steps: Awaitable[object]) -> None:
    """Run independent writes at once; every one finishes (or fails) before the first failure is raised."""
    outcomes = await asyncio.gather(*steps, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _due_entry(delivery_id: str, endpoint_id: str, at: datetime | None, created_at: datetime | None) -> Document:
    """The due-index entry of a pending delivery (no time: due now); with its creation time when known (the
    queue gauges read the oldest pending delivery from the index, not from the delivery history)."""
    entry: Document = {"_id": delivery_id, "at": at or EPOCH, "endpoint_id": endpoint_id}
    if created_at is not None:
        entry["created_at"] = created_at
    return entry
