"""Prometheus metrics shared by every service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("ksbb_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("ksbb_http_request_seconds", "HTTP request latency", ["method", "route"])
HANDLER_OUTCOMES = Counter(
    "ksbb_event_handler_outcomes_total", "Consumed events by outcome", ["event_type", "outcome"]
)
OUTBOX_BACKLOG = Gauge("ksbb_outbox_backlog_documents", "Documents with unpublished events", ["collection"])
#: Every replica reads the same outbox markers and reports the same value: aggregate with `max`, never `sum`.
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "ksbb_outbox_oldest_pending_age_seconds",
    "Age of the oldest outbox marker (a document whose events may be unpublished); 0 when none", ["collection"],
)
OUTBOX_PUBLISHED = Counter("ksbb_outbox_published_total", "Events published by the outbox relay", ["topic"])
#: Reported by each replica for the partitions assigned to it: `sum by (group, topic)` over pods is the group's lag.
CONSUMER_LAG = Gauge(
    "ksbb_consumer_lag_records", "Records not yet committed by a group, per partition assigned to this replica",
    ["group", "topic", "partition"],
)
#: Every replica of a group reports the same value (the topic is shared): aggregate with `max by (dlq)`.
DEAD_LETTER_RECORDS = Gauge(
    "ksbb_dead_letter_records",
    "Records present in a dead-letter topic of this service's consumer group (end minus start offset)",
    ["dlq", "topic"],
)
DEAD_LETTERS = Counter("ksbb_dead_letters_total", "Records sent to a dead-letter topic", ["topic", "reason"])
JOB_RUNS = Counter("ksbb_job_runs_total", "Runs of a background job by outcome (success, failure)", ["job", "outcome"])
JOB_LAST_SUCCESS = Gauge(
    "ksbb_job_last_success_timestamp_seconds", "Unix time a background job last finished without failing", ["job"]
)
JOB_RUN_SECONDS = Histogram(
    "ksbb_job_run_seconds", "Duration of a background job's run", ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900),
)
JOB_LEASE_HELD = Gauge("ksbb_job_lease_held", "1 while this replica holds a background job's lease", ["job"])
