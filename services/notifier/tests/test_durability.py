"""Pending deliveries survive a restart; a running notifier delivers on its own right after fan-out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ksbb_kit.clock import ManualClock, SystemClock
from ksbb_kit.testing.kafka import publish_events
from standardwebhooks.webhooks import Webhook

pytestmark = pytest.mark.integration


async def test_pending_deliveries_survive_a_restart(
    infra: Any,
    dev_issuer: Any,
    h: Any,
    receiver: Any,
) -> None:
    settings = h.base_settings(infra, dev_issuer, h.new_namespace())
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    fac = h.auth(dev_issuer, "facilitator", org_id="org_restart")
    receiver.script("/restart", (503, {}, "starting up"))
    async with h.start_notifier(settings, clock) as first:
        created = await first.client.post("/v1/webhooks/endpoints", headers=fac, json={"url": receiver.url("/restart")})
        secret = created.json()["secret"]
        [event] = await publish_events(
            infra.kafka_bootstrap,
            settings.topic_prefix,
            [h.pledge_created("plg_restart", "org_restart", "rcp_restart")],
        )

        async def fanned_out() -> bool:
            return await first.db.deliveries.count_documents({"message_id": event.id}) == 1

        await h.eventually(fanned_out)
        await first.notifier.dispatcher.run_due()
        assert len(receiver.at("/restart")) == 1  # first attempt failed with 503, retry in 5 s

    clock.advance(5)
    async with h.start_notifier(settings, clock) as second:
        delivered = await second.notifier.dispatcher.run_due()
        assert delivered == 1
        [_, retried] = receiver.at("/restart")
        assert retried.headers["webhook-id"] == event.id
        Webhook(secret).verify(retried.body, retried.headers)
        log = await second.client.get(f"/v1/webhooks/endpoints/{created.json()['id']}/deliveries", headers=fac)
        [item] = log.json()["items"]
        assert item["status"] == "succeeded"
        assert [a["status_code"] for a in item["attempt_log"]] == [503, 200]


async def test_running_notifier_delivers_without_being_driven(
    infra: Any,
    dev_issuer: Any,
    h: Any,
    receiver: Any,
) -> None:
    settings = h.base_settings(
        infra, dev_issuer, h.new_namespace(), dispatcher_autostart=True, retry_schedule_seconds=[0, 0.2, 0.2]
    )
    fac = h.auth(dev_issuer, "facilitator", org_id="org_live")
    receiver.script("/live", (500, {}, "oops"))
    async with h.start_notifier(settings, SystemClock()) as app:
        created = await app.client.post("/v1/webhooks/endpoints", headers=fac, json={"url": receiver.url("/live")})
        [event] = await publish_events(
            infra.kafka_bootstrap,
            settings.topic_prefix,
            [h.need_opened("need_live", "org_elsewhere", "rcp_x")],
        )

        async def delivered() -> bool:
            return any(r.headers["webhook-id"] == event.id for r in receiver.at("/live")[1:])

        await h.eventually(delivered, what="automatic delivery and retry")
        Webhook(created.json()["secret"]).verify(receiver.at("/live")[-1].body, receiver.at("/live")[-1].headers)
