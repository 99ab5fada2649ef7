"""Delivery metrics: webhook attempts and latency, the pending queue, e-mail sends (names in docs/notifier.md)."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from ksbb_notifier.app.ports import PendingDeliveries

WEBHOOK_ATTEMPTS = Counter(
    "ksbb_webhook_attempts_total",
    "Webhook delivery attempts by outcome (succeeded, retry, failed, gone; rate_limited, abandoned: not sent)",
    ["outcome"],
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "ksbb_webhook_attempt_seconds", "Duration of one webhook request, sent to answered or timed out",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "ksbb_webhook_delivery_latency_seconds", "From a delivery's creation to its successful attempt (retries included)",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 21600, 86400),
)
WEBHOOK_PENDING = Gauge("ksbb_webhook_deliveries_pending", "Webhook deliveries waiting to be delivered")
WEBHOOK_OLDEST_PENDING = Gauge(
    "ksbb_webhook_oldest_pending_age_seconds", "Age of the oldest webhook delivery still pending (0 when none)"
)
EMAIL_SENDS = Counter("ksbb_email_sends_total", "E-mail send attempts by outcome (sent, failed, skipped)", ["outcome"])


class QueueGauges:
    """Sets the pending-queue gauges from the store (a leased job: one replica reports the shared queue)."""

    def __init__(self, pending: PendingDeliveries) -> None:
        self._pending = pending

    async def observe(self, now: datetime) -> None:
        """Count the pending deliveries and the age of the oldest one."""
        count, oldest = await self._pending.summary()
        WEBHOOK_PENDING.set(count)
        WEBHOOK_OLDEST_PENDING.set(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
