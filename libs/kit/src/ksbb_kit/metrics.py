"""Prometheus metrics shared by every service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("ksbb_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("ksbb_http_request_seconds", "HTTP request latency", ["method", "route"])
HANDLER_OUTCOMES = Counter(
    "ksbb_event_handler_outcomes_total", "Consumed events by outcome", ["event_type", "outcome"]
)
OUTBOX_BACKLOG = Gauge("ksbb_outbox_backlog_documents", "Documents with unpublished events", ["collection"])
OUTBOX_PUBLISHED = Counter("ksbb_outbox_published_total", "Events published by the outbox relay", ["topic"])
CONSUMER_LAG = Gauge("ksbb_consumer_lag_records", "Records not yet committed by a group", ["group", "topic"])
DEAD_LETTERS = Counter("ksbb_dead_letters_total", "Records sent to a dead-letter topic", ["topic", "reason"])
