"""MongoDB store of messages and deliveries (`deliveries` carries `delivery_failed` events): queue and log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from ksbb_kit.outbox import PENDING, with_outbox
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_notifier.adapters.mongo import (
    EPOCH,
    Document,
    DueIndex,
    Outbox,
    due_filter,
    insert_ignoring_duplicates,
    lease_guard,
)
from ksbb_notifier.domain.deliveries import (
    AttemptLogEntry,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    DueDelivery,
    Message,
)

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

    async def create_indexes(self) -> None:
        """Indexes for the claim query and the delivery log."""
        await self._deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self._deliveries.create_index([("endpoint_id", ASCENDING), ("created_at", DESCENDING)])
        await self._due.adopt(self._deliveries, ["endpoint_id"])

    # -- fan-out and API -------------------------------------------------------------------------

    async def add_message(self, message: Message) -> None:
        """Store a message; one that exists already is left alone."""
        await insert_ignoring_duplicates(self._messages, [message_document(message)])

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Store new deliveries; existing ones are left alone. How many were new."""
        await self._due.put([_due_entry(d.id, d.endpoint_id, d.next_attempt_at) for d in deliveries
                             if d.status is DeliveryStatus.PENDING])
        return await insert_ignoring_duplicates(self._deliveries, [delivery_document(d) for d in deliveries])

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
            await self._due.put([_due_entry(delivery_id, endpoint_id, changes["next_attempt_at"])])
        doc = await self._deliveries.find_one_and_update(
            {"_id": delivery_id, "endpoint_id": endpoint_id},
            {"$set": changes},
            return_document=ReturnDocument.AFTER,
        )
        return delivery_from(doc) if doc is not None else None

    async def requeue_failed(self, endpoint_id: str, since: datetime, changes: dict[str, Any]) -> int:
        """Requeue an endpoint's failed deliveries created at or after `since` (and drop stale leases)."""
        query = {"endpoint_id": endpoint_id, "status": "failed", "created_at": {"$gte": since}}
        failed = [d["_id"] async for d in self._deliveries.find(query, {"_id": 1})]
        await self._due.put([_due_entry(i, endpoint_id, changes["next_attempt_at"]) for i in failed])
        result = await self._deliveries.update_many(
            {"_id": {"$in": failed}}, {"$set": {**changes, "leased_until": EPOCH}}
        )
        return result.modified_count

    async def sweep_finished(self, cutoff: datetime) -> dict[str, int]:
        """Delete finished deliveries (events published) and the messages none still needs, before `cutoff`."""
        deliveries = await self._deliveries.delete_many(
            {"status": {"$in": ["succeeded", "failed"]}, "created_at": {"$lt": cutoff}, PENDING: {"$ne": True}}
        )
        still_needed = await self._deliveries.distinct("message_id", {"created_at": {"$lt": cutoff}})
        messages = await self._messages.delete_many({"created_at": {"$lt": cutoff}, "_id": {"$nin": still_needed}})
        return {"deliveries": deliveries.deleted_count, "messages": messages.deleted_count}

    # -- the delivery loop -----------------------------------------------------------------------

    async def message(self, message_id: str) -> Message | None:
        """One message, or None."""
        doc = await self._messages.find_one({"_id": message_id})
        return message_from(doc) if doc is not None else None

    async def due(self, now: datetime, limit: int, exclude_endpoints: Sequence[str]) -> list[DueDelivery]:
        """Pending, unleased deliveries due now, oldest first, skipping saturated endpoints (from the due index)."""
        entries = await self._due.due(now, limit, exclude_endpoints)
        self._seen_due = {e["_id"]: e for e in entries}
        return [DueDelivery(e["_id"], e["endpoint_id"]) for e in entries]

    async def claim(self, delivery_ids: Sequence[str], now: datetime, lease_until: datetime) -> list[Delivery]:
        """Lease those still due and unleased, in one write; the ones this call won.

        Every document is leased atomically on its own, so two instances never win the same one; one
        shared token per batch keeps it to two round-trips however many deliveries are claimed.
        """
        token = uuid.uuid4().hex
        ids = list(delivery_ids)
        await self._deliveries.update_many(
            {"_id": {"$in": ids}, **due_filter(now)},
            {"$set": {"leased_until": lease_until, "lease_token": token}},
        )
        won = [delivery_from(d) for d in await self._deliveries.find({"_id": {"$in": ids}}).to_list(None)
               if d.get("lease_token") == token]
        lost = [self._seen_due.pop(i) for i in ids if i in self._seen_due and i not in {d.id for d in won}]
        for delivery in won:
            self._seen_due.pop(delivery.id, None)
        await self._due.correct(self._deliveries, lost)
        return won

    async def release(self, delivery: Delivery) -> None:
        """Give a lease back without changing anything else (shutdown)."""
        await self._deliveries.update_one(lease_guard(delivery.id, delivery.lease_token), {"$set": UNLEASED})

    async def postpone(self, delivery: Delivery, until: datetime) -> None:
        """Hand a leased delivery back, due again at `until`, without counting an attempt."""
        await self._deliveries.update_one(
            lease_guard(delivery.id, delivery.lease_token), {"$set": {"next_attempt_at": until, **UNLEASED}}
        )
        await self._due.put([_due_entry(delivery.id, delivery.endpoint_id, until)])

    async def settle(self, delivery: Delivery, changes: dict[str, Any]) -> None:
        """Change a leased delivery without an attempt and release the lease."""
        await self._deliveries.update_one(
            lease_guard(delivery.id, delivery.lease_token), {"$set": {**changes, **UNLEASED}}
        )
        await self._follow(delivery, changes)

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
        async with self._outbox.pending("deliveries", delivery.id, entries):
            await self._deliveries.update_one(lease_guard(delivery.id, delivery.lease_token), update)
        await self._follow(delivery, outcome.changes)

    async def _follow(self, delivery: Delivery, changes: dict[str, Any]) -> None:
        """Move the delivery's due entry after a change: to its next attempt, or away once it is finished.
        (After the write: a crash in between leaves an early or stale entry, which a claim corrects.)"""
        if changes.get("status", delivery.status.value) == DeliveryStatus.PENDING.value:
            at = changes.get("next_attempt_at", delivery.next_attempt_at)
            await self._due.put([_due_entry(delivery.id, delivery.endpoint_id, at)])
        else:
            await self._due.remove([delivery.id])


def _due_entry(delivery_id: str, endpoint_id: str, at: datetime | None) -> Document:
    """The due-index entry of a pending delivery (no time: due now)."""
    return {"_id": delivery_id, "at": at or EPOCH, "endpoint_id": endpoint_id}
