"""Transactional outbox without transactions: pending events live inside the aggregate document.

A state change and the events it causes are one single-document write (`with_outbox`/`new_document`).
The relay claims a document with a lease, publishes its pending events in order with the idempotent
producer, then pulls exactly the ones it sent. A crash before the pull republishes the same event ids,
which idempotent consumers ignore — so nothing is lost and nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from ksbb_contracts import CONTENT_TYPE, TYPE_HEADER, CloudEvent, Event
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_kit.clock import Clock, SystemClock
from ksbb_kit.ids import new_id
from ksbb_kit.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED
from ksbb_kit.tracing import current_traceparent, request_id_extension

log = logging.getLogger(__name__)
PENDING = "_outbox_pending"
OUTBOX = "_outbox"
LEASE = "_outbox_lease"


class RecordPublisher(Protocol):
    """Sends one Kafka record and returns once the broker acknowledged it (acks=all)."""

    async def send(
        self, topic: str, key: str | bytes | None, value: bytes | None, headers: Mapping[str, str | bytes],
    ) -> None:
        """Publish one record (a dead letter may carry a key or header values that are not UTF-8, as bytes)."""
        ...


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


class OutboxRelay:
    """Publishes pending events of the given collections; woken after writes, plus a periodic sweep."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        collections: Sequence[str],
        publisher: RecordPublisher,
        *,
        topic_prefix: str = "",
        sweep_seconds: float = 5.0,
        lease_seconds: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self._db = db
        self._collections = list(collections)
        self._publisher = publisher
        self._prefix = topic_prefix
        self._sweep = sweep_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock or SystemClock()
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Publish soon: called right after a write that added pending events."""
        self._wakeup.set()

    async def run(self) -> None:
        """Relay until cancelled."""
        while True:
            self._wakeup.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed; will retry")
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._sweep)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Publish every pending event that can be claimed now; returns how many were sent."""
        sent_total = 0
        for name in self._collections:
            while True:
                sent = await self._relay_one(name)
                if sent is None:
                    break
                sent_total += sent
        return sent_total

    async def backlog(self) -> int:
        """Documents with pending events (for metrics)."""
        total = 0
        for name in self._collections:
            count = await self._db[name].count_documents({PENDING: True})
            OUTBOX_BACKLOG.labels(collection=name).set(count)
            total += count
        return total

    async def _relay_one(self, name: str) -> int | None:
        collection = self._db[name]
        now = self._clock.now()
        claimed = await collection.find_one_and_update(
            {PENDING: True, "$or": [{LEASE: {"$exists": False}}, {LEASE: None}, {LEASE: {"$lt": now}}]},
            {"$set": {LEASE: now + self._lease}},
            projection={OUTBOX: 1},
            return_document=ReturnDocument.AFTER,
        )
        if claimed is None:
            return None
        entries = claimed.get(OUTBOX) or []
        sent_ids: list[str] = []
        try:
            for entry in entries:
                value = entry["value"].encode() if entry["value"] is not None else None
                # Structured mode: the value is the whole event; the type header sits outside `ce_` (ADR 0001).
                headers = {"content-type": CONTENT_TYPE, TYPE_HEADER: entry["type"]} if value is not None else {}
                trace = _traceparent_of(entry)
                if trace:
                    headers["traceparent"] = trace
                await self._publisher.send(self._prefix + entry["topic"], entry["key"], value, headers)
                sent_ids.append(entry["id"])
                OUTBOX_PUBLISHED.labels(topic=entry["topic"]).inc()
        finally:
            await collection.update_one(
                {"_id": claimed["_id"]},
                {"$pull": {OUTBOX: {"id": {"$in": sent_ids}}}, "$unset": {LEASE: ""}},
            )
            # Only clear the flag if no writer pushed new events meanwhile.
            await collection.update_one({"_id": claimed["_id"], OUTBOX: {"$size": 0}}, {"$set": {PENDING: False}})
        return len(sent_ids)


def _traceparent_of(entry: dict[str, Any]) -> str | None:
    if entry.get("value") is None:
        return None
    try:
        return CloudEvent.from_bytes(entry["value"].encode()).traceparent
    except ValueError:
        return None
