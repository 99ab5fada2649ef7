"""Messages and their deliveries: the signed request, what one attempt changes, requeueing, delivery limits."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ksbb_contracts import Event
from ksbb_contracts.events.notifier import WebhookDeliveryFailed

from ksbb_notifier.domain.endpoints import Endpoint
from ksbb_notifier.domain.schedule import Decision, Outcome
from ksbb_notifier.domain.signing import webhook_headers


class DeliveryStatus(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Message:
    """One webhook message: its id is the event's id and the `webhook-id` every endpoint receives."""

    id: str
    type: str
    timestamp: datetime | str
    data: dict[str, Any]
    organisation_id: str | None
    created_at: datetime

    def body(self) -> str:
        """The JSON body: `{type, timestamp, data}` (the event's public data only)."""
        timestamp = self.timestamp
        if isinstance(timestamp, datetime):
            timestamp = timestamp.isoformat().replace("+00:00", "Z")
        return json.dumps(
            {"type": self.type, "timestamp": timestamp, "data": self.data},
            separators=(",", ":"),
            ensure_ascii=False,
        )


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP attempt produced (failures are results too, so they can be logged and scheduled)."""

    status_code: int | None
    latency_ms: int
    response_body: str | None = None
    retry_after: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class AttemptLogEntry:
    """One attempt as the delivery log shows it."""

    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int
    response_body: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One message's delivery to one endpoint."""

    id: str
    message_id: str
    endpoint_id: str
    organisation_id: str | None
    event_type: str
    status: DeliveryStatus
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None
    attempts: int = 0
    round_attempts: int = 0
    failure_reason: str | None = None
    last_status_code: int | None = None
    attempt_log: tuple[AttemptLogEntry, ...] = ()
    #: The lease this instance holds while attempting it (None when not leased by us).
    lease_token: str | None = None


@dataclass(frozen=True)
class DueDelivery:
    """A delivery the queue found due: enough to choose within the concurrency limits before leasing."""

    id: str
    endpoint_id: str


@dataclass(frozen=True)
class WebhookRequest:
    """One signed POST, addressed to one endpoint (the endpoint id lets a sender keep per-endpoint state)."""

    endpoint_id: str
    url: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt changes on its delivery, and the events it causes."""

    outcome: Outcome
    changes: dict[str, Any]
    log_entry: AttemptLogEntry
    events: tuple[Event, ...] = field(default=())


def new_delivery(delivery_id: str, message_id: str, endpoint: Endpoint, event_type: str, now: datetime) -> Delivery:
    """A pending delivery of one message to one endpoint, due now."""
    return Delivery(
        id=delivery_id,
        message_id=message_id,
        endpoint_id=endpoint.id,
        organisation_id=endpoint.organisation_id,
        event_type=event_type,
        status=DeliveryStatus.PENDING,
        attempts=0,
        round_attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


def signed_request(endpoint: Endpoint, message: Message, secrets: list[str], now: datetime) -> WebhookRequest:
    """The request for one attempt, signed with every secret valid now (current first)."""
    body = message.body()
    return WebhookRequest(
        endpoint_id=endpoint.id,
        url=endpoint.url,
        headers=webhook_headers(secrets, message.id, int(now.timestamp()), body),
        body=body,
    )


def undeliverable_reason(endpoint: Endpoint | None, message: Message | None) -> str | None:
    """Why a delivery fails without an attempt (endpoint gone or off, message gone); None if it may go."""
    if endpoint is None:
        return "endpoint_deleted"
    if message is None:
        return "message_missing"
    if not endpoint.enabled:
        return "endpoint_disabled"
    return None


def attempt_outcome(
    delivery: Delivery,
    endpoint: Endpoint,
    message: Message,
    result: AttemptResult,
    decision: Decision,
    *,
    attempted_at: datetime,
    finished_at: datetime,
) -> AttemptOutcome:
    """The delivery's new state after one attempt; exhausting the schedule emits `delivery_failed`."""
    changes: dict[str, Any] = {
        "last_attempt_at": attempted_at,
        "last_status_code": result.status_code,
        "updated_at": finished_at,
        "round_attempts": delivery.round_attempts + 1,
    }
    events: tuple[Event, ...] = ()
    if decision.outcome is Outcome.SUCCEEDED:
        changes.update(status=DeliveryStatus.SUCCEEDED.value, succeeded_at=finished_at)
    elif decision.outcome is Outcome.RETRY:
        changes.update(status=DeliveryStatus.PENDING.value, next_attempt_at=decision.next_attempt_at)
    else:
        reason = "gone" if decision.outcome is Outcome.GONE else "retries_exhausted"
        changes.update(status=DeliveryStatus.FAILED.value, failed_at=finished_at, failure_reason=reason)
        if decision.outcome is Outcome.FAILED:
            events = (
                WebhookDeliveryFailed(
                    endpoint_id=endpoint.id,
                    organisation_id=endpoint.organisation_id,
                    message_id=message.id,
                    message_type=message.type,
                    attempts=delivery.attempts + 1,
                    occurred_at=finished_at,
                ),
            )
    entry = AttemptLogEntry(
        attempt=delivery.attempts + 1,
        at=attempted_at,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        response_body=result.response_body,
        error=result.error,
    )
    return AttemptOutcome(decision.outcome, changes, entry, events)


def abandoned(reason: str, now: datetime) -> dict[str, Any]:
    """What changes on a delivery that fails without an attempt."""
    return {"status": DeliveryStatus.FAILED.value, "failed_at": now, "failure_reason": reason}


def requeued(now: datetime) -> dict[str, Any]:
    """What puts a delivery back in the queue with a fresh retry schedule, due now (redeliver, recover)."""
    return {
        "status": DeliveryStatus.PENDING.value,
        "next_attempt_at": now,
        "round_attempts": 0,
        "failure_reason": None,
        "updated_at": now,
    }


# -- delivery limits -----------------------------------------------------------------------------


def pick_within_limits(
    candidates: Sequence[DueDelivery], in_flight: Mapping[str, int], per_endpoint: int, room: int
) -> list[str]:
    """Ids of due deliveries to lease, oldest first, without exceeding `room` or any endpoint's slots."""
    budget = dict(in_flight)
    chosen: list[str] = []
    for candidate in candidates:
        if len(chosen) >= room:
            break
        if budget.get(candidate.endpoint_id, 0) < per_endpoint:
            budget[candidate.endpoint_id] = budget.get(candidate.endpoint_id, 0) + 1
            chosen.append(candidate.id)
    return chosen


@dataclass(frozen=True)
class Pace:
    """A rate limit's answer: send now (and the endpoint's next free slot) or wait until `next_free`."""

    send_now: bool
    next_free: datetime


def pace(next_free: datetime | None, now: datetime, rate_per_second: float) -> Pace:
    """Space an endpoint's attempts `1/rate` seconds apart; an attempt before its slot waits for it."""
    slot = next_free or now
    if slot > now:
        return Pace(send_now=False, next_free=slot)
    return Pace(send_now=True, next_free=max(slot, now) + timedelta(seconds=1 / rate_per_second))
