"""Delivery metrics on a real notifier: webhook attempts by outcome, latency, the pending queue's gauges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ksbb_kit.clock import ManualClock
from ksbb_notifier.adapters.pending_deliveries import MongoPendingDeliveries
from ksbb_notifier.app.observability import QueueGauges
from prometheus_client import REGISTRY

pytestmark = pytest.mark.integration


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_attempts_latency_and_queue_gauges_follow_a_retried_delivery(
    infra: Any, dev_issuer: Any, h: Any, receiver: Any,
) -> None:
    settings = h.base_settings(infra, dev_issuer, h.new_namespace())
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    async with h.start_notifier(settings, clock) as app:
        admin = h.auth(dev_issuer, "admin")
        created = await app.client.post("/v1/webhooks/endpoints", json={"url": receiver.url("/m")}, headers=admin)
        assert created.status_code == 201, created.text
        endpoint = created.json()
        receiver.script("/m", (500, {}, "busy"))
        queued = await app.client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test", headers=admin)
        assert queued.status_code == 202, queued.text
        gauges = QueueGauges(MongoPendingDeliveries(app.db))
        retries, successes = sample("ksbb_webhook_attempts_total", outcome="retry"), sample(
            "ksbb_webhook_attempts_total", outcome="succeeded")
        latencies = sample("ksbb_webhook_delivery_latency_seconds_count")

        await gauges.observe(clock.now())
        assert sample("ksbb_webhook_deliveries_pending") == 1
        await app.notifier.dispatcher.run_due()
        assert sample("ksbb_webhook_attempts_total", outcome="retry") == retries + 1
        clock.advance(120)
        await gauges.observe(clock.now())
        assert sample("ksbb_webhook_deliveries_pending") == 1
        assert sample("ksbb_webhook_oldest_pending_age_seconds") >= 120
        await app.notifier.dispatcher.run_due()
        assert sample("ksbb_webhook_attempts_total", outcome="succeeded") == successes + 1
        assert sample("ksbb_webhook_delivery_latency_seconds_count") == latencies + 1
        assert sample("ksbb_webhook_delivery_latency_seconds_sum") >= 120
        await gauges.observe(clock.now())
        assert sample("ksbb_webhook_deliveries_pending") == 0
        assert sample("ksbb_webhook_oldest_pending_age_seconds") == 0
        metrics = (await app.client.get("/metrics")).text
        for name in ("ksbb_webhook_attempts_total", "ksbb_webhook_attempt_seconds", "ksbb_email_sends_total",
                     "ksbb_job_runs_total", "ksbb_consumer_lag_records"):
            assert name in metrics
