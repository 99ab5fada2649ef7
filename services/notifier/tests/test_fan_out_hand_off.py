"""A running delivery loop takes a fan-out's new deliveries leased to it (no query, no claim): each is sent
once, another instance cannot take them while the lease holds, and takes them over once it runs out."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ksbb_kit.clock import SystemClock
from ksbb_kit.mongo import connect
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.kafka import publish_events
from ksbb_notifier.adapters.delivery_store import MongoDeliveryStore
from ksbb_notifier.adapters.mongo import Outbox
from ksbb_notifier.bootstrap import another_dispatcher
from ksbb_notifier.domain.deliveries import Delivery, DeliveryStatus, Message

pytestmark = pytest.mark.integration
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


async def test_fanned_out_deliveries_are_sent_once_with_a_second_instance_polling(
    infra: Any, dev_issuer: Any, h: Any, receiver: Any
) -> None:
    settings = h.base_settings(infra, dev_issuer, h.new_namespace(), dispatcher_autostart=True)
    fac = h.auth(dev_issuer, "facilitator", org_id="org_hand_off")
    async with h.start_notifier(settings, SystemClock()) as app:
        await app.client.post("/v1/webhooks/endpoints", headers=fac, json={"url": receiver.url("/hand-off")})
        # Another instance's loop polls the same queue all along; neither may send a delivery the other has.
        other = another_dispatcher(app.notifier)
        polling = asyncio.create_task(other.serve())
        try:
            events = await publish_events(
                infra.kafka_bootstrap,
                settings.topic_prefix,
                [h.need_opened(f"need_ho{i}", "org_elsewhere", f"rcp_ho{i}") for i in range(30)],
            )

            async def all_succeeded() -> bool:
                return await app.db.deliveries.count_documents({"status": "succeeded"}) == 30

            await h.eventually(all_succeeded, what="every fanned-out delivery sent")
        finally:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
        sent = Counter(r.headers["webhook-id"] for r in receiver.at("/hand-off"))
        assert set(sent) == {e.id for e in events}
        assert max(sent.values()) == 1, "no delivery sent twice"
        assert await app.db.deliveries.count_documents({"attempts": 1}) == 30
        assert await app.db.delivery_due.count_documents({}) == 0


async def test_deliveries_handed_over_one_by_one_need_no_read_of_the_due_index(
    infra: Any, dev_issuer: Any, h: Any, receiver: Any
) -> None:
    # No periodic sweep during the test: every read of the due index would come from a delivery finishing.
    settings = h.base_settings(infra, dev_issuer, h.new_namespace(), dispatcher_autostart=True,
                               dispatch_sweep_seconds=3600)
    fac = h.auth(dev_issuer, "facilitator", org_id="org_quiet")
    async with h.start_notifier(settings, SystemClock()) as app:
        await app.client.post("/v1/webhooks/endpoints", headers=fac, json={"url": receiver.url("/quiet")})
        store = app.notifier.delivery_store
        reads = 0
        real_due = store.due

        async def counted_due(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            return await real_due(*args, **kwargs)

        store.due = counted_due  # type: ignore[method-assign]
        for i in range(5):
            await publish_events(infra.kafka_bootstrap, settings.topic_prefix,
                                 [h.need_opened(f"need_q{i}", "org_elsewhere", f"rcp_q{i}")])

            async def delivered(count: int = i + 1) -> bool:
                return await app.db.deliveries.count_documents({"status": "succeeded"}) == count

            await h.eventually(delivered, what=f"delivery {i + 1} sent")
        assert len(receiver.at("/quiet")) == 5
        assert reads == 0, "a delivery that finished with nothing else waiting reads the due index"


async def test_a_retry_due_at_once_is_sent_without_waiting_for_the_periodic_sweep(
    infra: Any, dev_issuer: Any, h: Any, receiver: Any
) -> None:
    settings = h.base_settings(infra, dev_issuer, h.new_namespace(), dispatcher_autostart=True,
                               dispatch_sweep_seconds=3600)
    fac = h.auth(dev_issuer, "facilitator", org_id="org_soon")
    receiver.script("/soon", (429, {"Retry-After": "0"}, "busy"))  # then the default 200
    async with h.start_notifier(settings, SystemClock()) as app:
        await app.client.post("/v1/webhooks/endpoints", headers=fac, json={"url": receiver.url("/soon")})
        await publish_events(infra.kafka_bootstrap, settings.topic_prefix,
                             [h.need_opened("need_soon", "org_elsewhere", "rcp_soon")])

        async def succeeded() -> bool:
            return await app.db.deliveries.count_documents({"status": "succeeded", "attempts": 2}) == 1

        await h.eventually(succeeded, what="the retry sent (the sweep would come only after an hour)")
        assert len(receiver.at("/soon")) == 2


async def test_an_event_no_endpoint_takes_leaves_nothing_stored(
    infra: Any, dev_issuer: Any, h: Any, receiver: Any
) -> None:
    settings = h.base_settings(infra, dev_issuer, h.new_namespace(), dispatcher_autostart=True)
    fac = h.auth(dev_issuer, "facilitator", org_id="org_picky")
    async with h.start_notifier(settings, SystemClock()) as app:
        created = await app.client.post("/v1/webhooks/endpoints", headers=fac, json={
            "url": receiver.url("/picky"), "event_types": ["ksbb.need.opened.v1"]})
        assert created.status_code == 201, created.text
        # The pledge event goes to nobody (another organisation's, a type not taken); the need event is taken.
        events = await publish_events(infra.kafka_bootstrap, settings.topic_prefix, [
            h.pledge_created("plg_nobody", "org_elsewhere", "rcp_nobody"),
            h.need_opened("need_picky", "org_elsewhere", "rcp_picky"),
        ])

        async def delivered() -> bool:
            return await app.db.deliveries.count_documents({"status": "succeeded"}) == 1

        await h.eventually(delivered, what="the need event delivered")
        assert [m["_id"] async for m in app.db.messages.find({})] == [events[1].id]
        assert [r.headers["webhook-id"] for r in receiver.at("/picky")] == [events[1].id]


def pending(delivery_id: str) -> Delivery:
    """A new pending delivery of message msg_1 to endpoint whe_1."""
    return Delivery(
        id=delivery_id, message_id="msg_1", endpoint_id="whe_1", organisation_id="org_1", event_type="ksbb.test.v1",
        status=DeliveryStatus.PENDING, attempts=0, round_attempts=0, next_attempt_at=NOW, created_at=NOW,
        updated_at=NOW,
    )


async def test_a_delivery_leased_at_fan_out_is_taken_over_once_its_lease_runs_out(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_hand_off"]

    def no_events(*_: Any) -> list[dict[str, Any]]:
        return []

    fanning = MongoDeliveryStore(db, Outbox(no_events, None))  # type: ignore[arg-type]
    other = MongoDeliveryStore(db, Outbox(no_events, None))  # type: ignore[arg-type]
    message = Message("msg_1", "ksbb.test.v1", NOW, {"x": 1}, "org_1", NOW)
    lease_until = NOW + timedelta(seconds=45)
    try:
        # The loop had room for dlv_1 only: dlv_2 is stored unleased, for a claim as always.
        leased, unleased = await fanning.add_fan_out(
            [message], [pending("dlv_1"), pending("dlv_2")], lease_until=lease_until, leased_ids={"dlv_1"}
        )
        assert leased.lease_token is not None and unleased.lease_token is None
        stored = await db.deliveries.find_one({"_id": "dlv_1"})
        assert stored["leased_until"] == lease_until and stored["lease_token"] == leased.lease_token
        assert (await db.deliveries.find_one({"_id": "dlv_2"}))["lease_token"] is None
        assert [d.id for d in await fanning.due(NOW, 10, [])] == ["dlv_2"]
        [claimed] = await fanning.claim(["dlv_2"], NOW, lease_until)
        assert claimed.id == "dlv_2"
        # A redelivered event fans out again: nothing new, so nothing is leased or handed over twice.
        again = await fanning.add_fan_out([message], [pending("dlv_1")], lease_until=lease_until, leased_ids={"dlv_1"})
        assert again == []
        assert (await db.deliveries.find_one({"_id": "dlv_1"}))["lease_token"] == leased.lease_token
        # The fanning instance does not poll what it holds; another instance sees it but cannot claim it.
        assert await fanning.due(NOW, 10, []) == []
        assert sorted(d.id for d in await other.due(NOW, 10, [])) == ["dlv_1", "dlv_2"]
        assert await other.claim(["dlv_1", "dlv_2"], NOW, NOW + timedelta(seconds=45)) == []
        # The fanning instance died before sending: once the lease ran out, the other takes it over.
        later = lease_until + timedelta(seconds=1)
        assert "dlv_1" in {d.id for d in await other.due(later, 10, [])}
        [taken] = await other.claim(["dlv_1"], later, later + timedelta(seconds=45))
        assert taken.id == "dlv_1" and taken.lease_token != leased.lease_token
    finally:
        await client.drop_database(db.name)
        await client.close()
