"""The retry schedule as a rule: bounded attempts, delays that never shrink, Retry-After honoured within bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_notifier.domain.schedule import THROTTLING_STATUSES, Decision, Outcome, decide, parse_retry_after
from ksbb_notifier.settings import DEFAULT_RETRY_SCHEDULE

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
MAX_RETRY_AFTER = 86400.0

#: Answers that are neither success nor 410 Gone: every one of them is retried on the schedule.
failing_statuses = st.one_of(
    st.none(),
    st.integers(100, 199),
    st.integers(300, 409),
    st.integers(411, 599),
)
retry_after_values = st.one_of(
    st.none(),
    st.integers(0, 10**7).map(str),
    st.sampled_from(["soon", "", " ", "-5", "1.5", "Wed, 21 Oct 2015 07:28:00"]),
)


def after(
    status: int | None, attempt: int, retry_after: str | None = None, schedule: list[float] | None = None
) -> Decision:
    """The decision after attempt number `attempt` of a round on the default schedule."""
    return decide(
        status_code=status,
        retry_after=retry_after,
        attempts_in_round=attempt,
        schedule=schedule if schedule is not None else DEFAULT_RETRY_SCHEDULE,
        now=NOW,
        max_retry_after=MAX_RETRY_AFTER,
    )


def test_the_default_schedule_is_standard_webhooks_eight_attempts() -> None:
    assert DEFAULT_RETRY_SCHEDULE == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    assert DEFAULT_RETRY_SCHEDULE == sorted(DEFAULT_RETRY_SCHEDULE)


@given(answers=st.lists(st.tuples(failing_statuses, retry_after_values), min_size=8, max_size=30))
def test_a_round_never_has_more_than_eight_attempts(answers: list[tuple[int | None, str | None]]) -> None:
    attempts = 0
    for status, retry_after in answers:
        attempts += 1
        decision = after(status, attempts, retry_after)
        if decision.outcome is not Outcome.RETRY:
            break
        assert decision.next_attempt_at is not None
    assert decision.outcome is Outcome.FAILED
    assert attempts == len(DEFAULT_RETRY_SCHEDULE) == 8


@given(statuses=st.lists(failing_statuses, min_size=7, max_size=7))
def test_without_retry_after_the_delays_never_shrink(statuses: list[int | None]) -> None:
    delays = []
    for attempt, status in enumerate(statuses, start=1):
        decision = after(status, attempt)
        assert decision.outcome is Outcome.RETRY and decision.next_attempt_at is not None
        delays.append((decision.next_attempt_at - NOW).total_seconds())
    assert delays == sorted(delays)
    assert delays == DEFAULT_RETRY_SCHEDULE[1:]


@given(
    schedule=st.lists(st.floats(0, 10**6, allow_nan=False), min_size=1, max_size=12).map(sorted),
    status=failing_statuses,
)
def test_any_sorted_schedule_gives_non_decreasing_delays_and_a_bounded_round(
    schedule: list[float], status: int | None
) -> None:
    if status in THROTTLING_STATUSES:
        status = 500
    delays = []
    for attempt in range(1, len(schedule)):
        decision = after(status, attempt, schedule=schedule)
        assert decision.next_attempt_at is not None
        delays.append(decision.next_attempt_at - NOW)
    assert delays == sorted(delays)
    assert after(status, len(schedule), schedule=schedule).outcome is Outcome.FAILED


@given(
    status=st.sampled_from(sorted(THROTTLING_STATUSES)),
    seconds=st.integers(0, 10**8),
    attempt=st.integers(1, 7),
)
def test_retry_after_seconds_are_honoured_up_to_the_cap(status: int, seconds: int, attempt: int) -> None:
    decision = after(status, attempt, str(seconds))
    assert decision.outcome is Outcome.RETRY and decision.next_attempt_at is not None
    delay = (decision.next_attempt_at - NOW).total_seconds()
    assert delay == min(seconds, MAX_RETRY_AFTER)
    assert 0 <= delay <= MAX_RETRY_AFTER


@given(status=st.sampled_from(sorted(THROTTLING_STATUSES)), offset=st.integers(-(10**6), 10**6))
def test_retry_after_dates_are_honoured_within_bounds(status: int, offset: int) -> None:
    moment = NOW + timedelta(seconds=offset)
    decision = after(status, 1, format_datetime(moment, usegmt=True))
    assert decision.next_attempt_at is not None
    delay = (decision.next_attempt_at - NOW).total_seconds()
    assert delay == min(max(offset, 0), MAX_RETRY_AFTER)


@given(
    status=st.integers(100, 599).filter(lambda s: s not in THROTTLING_STATUSES and not 200 <= s < 300 and s != 410),
    seconds=st.integers(0, 10**6),
    attempt=st.integers(1, 7),
)
def test_retry_after_is_ignored_unless_the_receiver_asks_to_slow_down(status: int, seconds: int, attempt: int) -> None:
    decision = after(status, attempt, str(seconds))
    assert decision.next_attempt_at == NOW + timedelta(seconds=DEFAULT_RETRY_SCHEDULE[attempt])


@given(status=st.integers(200, 299), attempt=st.integers(1, 50), retry_after=retry_after_values)
def test_any_2xx_is_success_at_any_attempt(status: int, attempt: int, retry_after: str | None) -> None:
    decision = after(status, attempt, retry_after)
    assert decision.outcome is Outcome.SUCCEEDED and decision.next_attempt_at is None


@given(attempt=st.integers(1, 50), retry_after=retry_after_values)
def test_410_gone_ends_the_round_at_once(attempt: int, retry_after: str | None) -> None:
    assert after(410, attempt, retry_after).outcome is Outcome.GONE


def test_retry_after_parsing() -> None:
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after(" 7 ", NOW) == 7
    assert parse_retry_after(format_datetime(NOW + timedelta(minutes=2), usegmt=True), NOW) == 120
    assert parse_retry_after(format_datetime(NOW - timedelta(minutes=2), usegmt=True), NOW) == 0
    for unusable in (None, "", "soon", "-5", "1.5", "Wed, 21 Oct 2015 07:28:00"):
        assert parse_retry_after(unusable, NOW) is None, unusable
