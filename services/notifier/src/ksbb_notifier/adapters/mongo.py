"""What the notifier's MongoDB stores share: idempotent inserts, leases and the outbox hook."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ksbb_contracts import Event
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

#: "Not leased": a lease time every claim filter treats as expired (no nulls in range filters).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DUPLICATE_KEY = 11000

Document = dict[str, Any]
Collection = AsyncCollection[Document]
#: Turns events into outbox entries to embed in the same write (the runtime's `events`).
OutboxEntries = Callable[..., list[dict[str, Any]]]
#: Wakes the outbox relay after a write that carried events.
WakeRelay = Callable[[], None]


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


def due_filter(now: datetime) -> Document:
    """Pending documents due now whose lease (if any) has run out."""
    return {"status": "pending", "next_attempt_at": {"$lte": now}, "leased_until": {"$lt": now}}


def lease_guard(document_id: str, lease_token: str | None) -> Document:
    """Matches a document only while the given lease still holds it."""
    return {"_id": document_id, "lease_token": lease_token}


class Outbox:
    """How a store embeds events in its writes: entries from the runtime, then a wake-up for the relay."""

    def __init__(self, entries: OutboxEntries, wake_relay: WakeRelay) -> None:
        self.entries = entries
        self.wake_relay = wake_relay

    def entries_for(self, events: Sequence[Event]) -> list[dict[str, Any]]:
        """Outbox entries of the events (none for none)."""
        return self.entries(*events) if events else []
