"""Retry decisions: what a receiver's answer means and when the next attempt is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

#: Statuses that mean "slow down": the receiver's Retry-After is honoured.
THROTTLING_STATUSES = frozenset({429, 502, 503, 504})


class Outcome(StrEnum):
    """What to do with a delivery after one attempt."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"


@dataclass(frozen=True)
class Decision:
    """The outcome of an attempt and, for retries, when the next one is due."""

    outcome: Outcome
    next_attempt_at: datetime | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())


def decide(
    *,
    status_code: int | None,
    retry_after: str | None,
    attempts_in_round: int,
    schedule: list[float],
    now: datetime,
    max_retry_after: float,
) -> Decision:
    """Decide after attempt number `attempts_in_round` (1-based) of the current schedule."""
    if status_code is not None and 200 <= status_code < 300:
        return Decision(Outcome.SUCCEEDED)
    if status_code == 410:
        return Decision(Outcome.GONE)
    if attempts_in_round >= len(schedule):
        return Decision(Outcome.FAILED)
    delay = schedule[attempts_in_round]
    if status_code in THROTTLING_STATUSES:
        wait = parse_retry_after(retry_after, now)
        if wait is not None:
            delay = min(wait, max_retry_after)
    return Decision(Outcome.RETRY, now + timedelta(seconds=delay))
