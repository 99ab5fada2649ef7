"""The retention sweeps delete what they always deleted, found through creation-minute buckets, not by scanning."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from ksbb_kit.mongo import connect
from ksbb_kit.outbox import PENDING
from ksbb_kit.testing.infra import Infra
from ksbb_notifier.adapters.delivery_store import MongoDeliveryStore, delivery_document, message_document
from ksbb_notifier.adapters.mail_store import MongoEmailQueue
from ksbb_notifier.adapters.mongo import Outbox
from ksbb_notifier.adapters.retention import minute_of
from ksbb_notifier.domain.deliveries import Delivery, DeliveryStatus, Message
from ksbb_notifier.domain.mailing import QueuedEmail

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 8, 30, 15, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)
OLD = NOW - timedelta(days=40)


def message(message_id: str, created_at: datetime) -> Message:
    """A webhook message created at a given time."""
    return Message(message_id, "ksbb.test.v1", created_at, {"n": 1}, "org_1", created_at)


def delivery(delivery_id: str, message_id: str, created_at: datetime) -> Delivery:
    """A pending delivery of a message to endpoint whe_1, created with its message."""
    return Delivery(
        id=delivery_id, message_id=message_id, endpoint_id="whe_1", organisation_id="org_1",
        event_type="ksbb.test.v1", status=DeliveryStatus.PENDING, attempts=0, round_attempts=0,
        next_attempt_at=created_at, created_at=created_at, updated_at=created_at,
    )


def email(email_id: str, created_at: datetime) -> QueuedEmail:
    """A pending e-mail queued at a given time."""
    return QueuedEmail(email_id, "pledge_created", "donor", "dnr_1", {}, "pending", 0, created_at, created_at)


@pytest_asyncio.fixture
async def db(infra: Infra) -> AsyncIterator[Any]:
    """A database of its own."""
    client = connect(infra.mongodb_url)
    database = client[f"t{uuid.uuid4().hex[:10]}_retention"]
    yield database
    await client.drop_database(database.name)
    await client.close()


async def ids(collection: Any) -> set[str]:
    return {d["_id"] async for d in collection.find({}, {"_id": 1})}


async def test_finished_deliveries_and_the_messages_nothing_needs_go_and_nothing_else(db: Any) -> None:
    def no_events(*_: Any) -> list[dict[str, Any]]:
        return []

    store = MongoDeliveryStore(db, Outbox(no_events, None))  # type: ignore[arg-type]
    # Stored before the buckets existed: adopted at the first start.
    await db.messages.insert_one(message_document(message("msg_legacy", OLD)))
    legacy = delivery_document(delivery("dlv_legacy", "msg_legacy", OLD))
    await db.deliveries.insert_one({**legacy, "status": "succeeded"})
    await store.create_indexes()

    await store.add_messages([message(m, OLD) for m in ("msg_done", "msg_waiting", "msg_alone")])
    await store.add_messages([message("msg_recent", NOW - timedelta(days=1))])
    await store.add_message(message("msg_at_cutoff", CUTOFF + timedelta(seconds=1)))
    await store.add_deliveries([
        delivery("dlv_done", "msg_done", OLD),
        delivery("dlv_unpublished", "msg_done", OLD),
        delivery("dlv_waiting", "msg_waiting", OLD),
        delivery("dlv_recent", "msg_recent", NOW - timedelta(days=1)),
        delivery("dlv_at_cutoff", "msg_at_cutoff", CUTOFF + timedelta(seconds=1)),
    ])
    for finished in ("dlv_done", "dlv_recent", "dlv_at_cutoff"):
        await db.deliveries.update_one({"_id": finished}, {"$set": {"status": "succeeded"}})
    # Failed, but its delivery_failed event is not published yet.
    await db.deliveries.update_one({"_id": "dlv_unpublished"}, {"$set": {"status": "failed", PENDING: True}})

    swept = await store.sweep_finished(CUTOFF)

    assert swept == {"deliveries": 2, "messages": 2}
    assert await ids(db.deliveries) == {"dlv_unpublished", "dlv_waiting", "dlv_recent", "dlv_at_cutoff"}
    assert await ids(db.messages) == {"msg_done", "msg_waiting", "msg_recent", "msg_at_cutoff"}

    # What was kept goes once it is done, by the next sweep; newer history stays.
    await db.deliveries.update_one({"_id": "dlv_unpublished"}, {"$unset": {PENDING: ""}})
    await db.deliveries.update_one({"_id": "dlv_waiting"}, {"$set": {"status": "failed"}})
    assert await store.sweep_finished(CUTOFF) == {"deliveries": 2, "messages": 2}
    assert await ids(db.deliveries) == {"dlv_recent", "dlv_at_cutoff"}
    assert await ids(db.messages) == {"msg_recent", "msg_at_cutoff"}
    assert await store.sweep_finished(CUTOFF) == {"deliveries": 0, "messages": 0}

    # A month later the rest is old enough too; the buckets swept are gone.
    assert await store.sweep_finished(NOW + timedelta(minutes=1)) == {"deliveries": 2, "messages": 2}
    assert await ids(db.deliveries) == set() and await ids(db.messages) == set()
    left = {d["_id"] for d in await db.retention.find({}, {"_id": 1}).to_list(None)}
    assert not [name for name in left if name.count("/") == 2 and not name.endswith("/carry")], left


async def test_a_delivery_redelivered_after_it_was_read_is_not_deleted(db: Any) -> None:
    def no_events(*_: Any) -> list[dict[str, Any]]:
        return []

    store = MongoDeliveryStore(db, Outbox(no_events, None))  # type: ignore[arg-type]
    await store.create_indexes()
    await store.add_messages([message("msg_1", OLD)])
    await store.add_deliveries([delivery("dlv_1", "msg_1", OLD)])
    await db.deliveries.update_one({"_id": "dlv_1"}, {"$set": {"status": "failed"}})
    original = db.deliveries.find_one_and_delete

    async def redelivered_first(*args: Any, **kwargs: Any) -> Any:
        # An owner asks for a redelivery between the sweep's read and its delete.
        await db.deliveries.update_one({"_id": "dlv_1"}, {"$set": {"status": "pending"}})
        return await original(*args, **kwargs)

    store._deliveries.find_one_and_delete = redelivered_first  # type: ignore[method-assign]
    assert await store.sweep_finished(CUTOFF) == {"deliveries": 0, "messages": 0}
    assert await ids(db.deliveries) == {"dlv_1"} and await ids(db.messages) == {"msg_1"}


async def test_finished_emails_go_pending_ones_stay(db: Any) -> None:
    queue = MongoEmailQueue(db)
    await db.emails.insert_one({"_id": "eml_legacy", "status": "sent", "created_at": OLD, "next_attempt_at": OLD})
    await queue.create_indexes()
    await queue.add_many([email("eml_sent", OLD), email("eml_waiting", OLD), email("eml_recent", NOW)])
    assert await queue.add(email("eml_skipped", OLD))
    for done, status in (("eml_sent", "sent"), ("eml_skipped", "skipped"), ("eml_recent", "sent")):
        await db.emails.update_one({"_id": done}, {"$set": {"status": status}})

    assert await queue.sweep_finished(CUTOFF) == 3
    assert await ids(db.emails) == {"eml_waiting", "eml_recent"}
    await db.emails.update_one({"_id": "eml_waiting"}, {"$set": {"status": "failed"}})
    assert await queue.sweep_finished(CUTOFF) == 1
    assert await ids(db.emails) == {"eml_recent"}


@pytest.mark.unit
def test_a_minute_bucket_starts_at_the_minute() -> None:
    assert minute_of(NOW) == datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    assert minute_of(datetime(2026, 3, 2, 15, 30, 59)) == datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
