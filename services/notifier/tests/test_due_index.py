"""The delivery queue's poll reads only pending work (the due index), never the delivery history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ksbb_kit.mongo import connect
from ksbb_kit.testing.infra import Infra
from ksbb_notifier.adapters.delivery_store import MongoDeliveryStore, delivery_document
from ksbb_notifier.adapters.mongo import Outbox
from ksbb_notifier.adapters.pending_deliveries import MongoPendingDeliveries
from ksbb_notifier.domain.deliveries import Delivery, DeliveryStatus

pytestmark = pytest.mark.integration
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def delivery(
    delivery_id: str, status: DeliveryStatus = DeliveryStatus.PENDING, at: datetime = NOW, created_at: datetime = NOW
) -> Delivery:
    """A delivery of a test message to endpoint whe_1."""
    return Delivery(
        id=delivery_id, message_id="msg_1", endpoint_id="whe_1", organisation_id="org_1", event_type="ksbb.test.v1",
        status=status, attempts=0, round_attempts=0, next_attempt_at=at, created_at=created_at, updated_at=NOW,
    )


async def test_due_work_comes_from_the_index_and_stale_entries_are_corrected(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_due_index"]

    def no_events(*_: Any) -> list[dict[str, Any]]:
        return []

    store = MongoDeliveryStore(db, Outbox(no_events, None))  # type: ignore[arg-type]
    try:
        # History: finished deliveries written straight into the log are never looked at by the poll.
        await db.deliveries.insert_many([
            delivery_document(delivery(f"dlv_old{i}", DeliveryStatus.SUCCEEDED)) for i in range(50)
        ])
        await store.add_deliveries([delivery("dlv_due"), delivery("dlv_later", at=NOW + timedelta(hours=1))])
        assert [d.id for d in await store.due(NOW, 10, [])] == ["dlv_due"]
        assert await db.delivery_due.count_documents({}) == 2, "one entry per pending delivery, nothing else"

        # A crash between a delivery's final write and its entry's removal leaves a stale entry: the claim
        # that cannot win it removes it.
        await db.deliveries.update_one({"_id": "dlv_due"}, {"$set": {"status": "succeeded"}})
        assert [d.id for d in await store.due(NOW, 10, [])] == ["dlv_due"]
        assert await store.claim(["dlv_due"], NOW, NOW + timedelta(minutes=1)) == []
        assert await store.due(NOW, 10, []) == []
        assert await db.delivery_due.count_documents({}) == 1

        # Pending deliveries stored before the index existed are adopted at start-up.
        await db.deliveries.insert_one(delivery_document(delivery("dlv_legacy")))
        await store.create_indexes()
        assert [d.id for d in await store.due(NOW, 10, [])] == ["dlv_legacy"]
        [claimed] = await store.claim(["dlv_legacy"], NOW, NOW + timedelta(minutes=1))
        assert claimed.id == "dlv_legacy"
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_the_queue_gauges_count_pending_deliveries_from_the_index_not_the_history(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_due_gauges"]

    def no_events(*_: Any) -> list[dict[str, Any]]:
        return []

    store = MongoDeliveryStore(db, Outbox(no_events, None))  # type: ignore[arg-type]
    pending = MongoPendingDeliveries(db)
    try:
        assert await pending.summary() == (0, None)
        # Finished history (older than anything pending) is not pending work.
        await db.deliveries.insert_many([
            delivery_document(delivery(f"dlv_old{i}", DeliveryStatus.SUCCEEDED, created_at=NOW - timedelta(days=2)))
            for i in range(20)
        ])
        assert await pending.summary() == (0, None)
        await store.add_deliveries([
            delivery("dlv_newer", created_at=NOW),
            delivery("dlv_oldest", created_at=NOW - timedelta(hours=1), at=NOW + timedelta(hours=1)),
        ])
        assert await pending.summary() == (2, NOW - timedelta(hours=1))  # not due yet is pending all the same

        # A pending delivery stored before its entry carried its creation time is adopted with it.
        await db.deliveries.insert_one(delivery_document(delivery("dlv_legacy", created_at=NOW - timedelta(hours=3))))
        await store.create_indexes()
        assert await pending.summary() == (3, NOW - timedelta(hours=3))

        # Leased and then finished: no longer pending.
        [leased] = await store.claim(["dlv_legacy"], NOW, NOW + timedelta(minutes=1))
        await store.settle(leased, {"status": "failed", "failure_reason": "test"})
        assert await pending.summary() == (2, NOW - timedelta(hours=1))
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_a_delivery_whose_entry_is_seen_before_the_delivery_is_stored_is_not_lost(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_due_race"]

    def no_events(*_: Any) -> list[dict[str, Any]]:
        return []

    store = MongoDeliveryStore(db, Outbox(no_events, None))  # type: ignore[arg-type]
    try:
        # A fan-out writes the entry first and the delivery right after; a dispatcher pass in between sees
        # the entry and cannot claim a delivery that is not there yet.
        await db.delivery_due.insert_one({"_id": "dlv_race", "at": NOW, "endpoint_id": "whe_1", "created_at": NOW})
        assert [d.id for d in await store.due(NOW, 10, [])] == ["dlv_race"]
        assert await store.claim(["dlv_race"], NOW, NOW + timedelta(minutes=1)) == []
        await db.deliveries.insert_one(delivery_document(delivery("dlv_race")))

        # The entry stays (looked at again shortly), so the delivery is claimed by a later pass.
        later = NOW + timedelta(seconds=1)
        assert [d.id for d in await store.due(later, 10, [])] == ["dlv_race"]
        [claimed] = await store.claim(["dlv_race"], later, later + timedelta(minutes=1))
        assert claimed.id == "dlv_race"
        await db.delivery_due.delete_one({"_id": "dlv_race"})  # as its finished attempt does

        # An entry whose delivery never comes (its writer crashed in between) is dropped after a grace period.
        await db.delivery_due.insert_one({"_id": "dlv_never", "at": NOW, "endpoint_id": "whe_1"})
        for moment in (later, later + timedelta(minutes=11)):
            assert [d.id for d in await store.due(moment, 10, [])] == ["dlv_never"]
            assert await store.claim(["dlv_never"], moment, moment + timedelta(minutes=1)) == []
        assert await db.delivery_due.find_one({"_id": "dlv_never"}) is None
    finally:
        await client.drop_database(db.name)
        await client.close()
