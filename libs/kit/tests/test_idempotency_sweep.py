"""Idempotency keys are forgotten after their retention by looking up the expired minutes only."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from ksbb_kit.clock import ManualClock
from ksbb_kit.http import IdempotencyStore
from ksbb_kit.mongo import connect
from ksbb_kit.testing.infra import Infra

pytestmark = pytest.mark.integration


async def test_keys_are_forgotten_minute_by_minute_after_the_retention(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_idempotency"]
    clock = ManualClock()
    store = IdempotencyStore(db, clock, timedelta(hours=1))
    try:
        await db["idempotency_keys"].insert_one({"_id": "older", "created_at": clock.now() - timedelta(hours=2)})
        assert await store.sweep() == 1, "the first sweep forgets keys stored before expiry notes, by time"

        async def work() -> tuple[int, Any]:
            return 201, {"ok": True}

        await store.once("caller", "op", "first", "hash", work)
        clock.advance(timedelta(minutes=30))
        await store.remember("caller", "op", "second", "hash", 200, {"ok": True})
        assert await store.sweep() == 0
        assert await db["idempotency_keys"].count_documents({}) == 2

        clock.advance(timedelta(minutes=31, seconds=60))  # the first key's minute ended an hour ago
        assert await store.sweep() == 1
        assert await store.recall("caller", "op", "first", "hash") is None
        assert await store.recall("caller", "op", "second", "hash") == {"status": 200, "body": {"ok": True}}
        assert await store.sweep() == 0, "a swept minute is not looked at again"

        # Half an hour later the second key's minute has expired too.
        clock.advance(timedelta(minutes=30))
        assert await store.sweep() == 1
        notes = await db["idempotency_expiry"].count_documents({"_id": {"$ne": "swept"}})
        assert notes == 0, "the notes of swept minutes are deleted with their keys"
    finally:
        await client.drop_database(db.name)
        await client.close()
