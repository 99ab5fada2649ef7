"""Unit tests of concern reports: the hourly rate-limit arithmetic, submission and resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_registry.domain import reports
from ksbb_registry.domain.errors import ReportRateExceeded
from ksbb_registry.domain.reports import NewReport, Resolution

from .builders import NOW, STAFF, recipient

pytestmark = pytest.mark.unit
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@given(now=moments)
def test_a_window_is_the_clock_hour_that_contains_now(now: datetime) -> None:
    window = reports.rate_window(now)
    assert window.start <= now < window.end
    assert window.end - window.start == timedelta(hours=1)
    assert (window.start.minute, window.start.second, window.start.microsecond) == (0, 0, 0)
    assert (
        reports.rate_window(window.start)
        == window
        == reports.rate_window(window.end - timedelta(microseconds=1))
    )


@given(now=moments)
def test_retry_after_counts_whole_seconds_to_the_end_of_the_window_and_at_least_one(now: datetime) -> None:
    window = reports.rate_window(now)
    retry = window.retry_after(now)
    assert 1 <= retry <= 3600
    assert now + timedelta(seconds=retry) >= window.end - timedelta(seconds=1)
    assert window.retry_after(window.end - timedelta(milliseconds=1)) == 1


@given(now=moments, client=st.sampled_from(["10.0.0.1", "10.0.0.2"]))
def test_one_counter_per_client_and_window(now: datetime, client: str) -> None:
    window = reports.rate_window(now)
    later = reports.rate_window(window.end)
    assert window.counter_key(client) != later.counter_key(client)
    assert window.counter_key(client) != window.counter_key(client + "0")
    assert window.counter_key(client) == reports.rate_window(window.start).counter_key(client)


@given(
    limit=st.integers(min_value=1, max_value=50), count=st.integers(min_value=1, max_value=100), now=moments
)
def test_the_limit_admits_exactly_limit_reports_per_window(limit: int, count: int, now: datetime) -> None:
    window = reports.rate_window(now)
    if count <= limit:
        reports.check_rate(count, limit, window, now)
    else:
        with pytest.raises(ReportRateExceeded) as refused:
            reports.check_rate(count, limit, window, now)
        assert refused.value.retry_after == window.retry_after(now)


def test_a_report_is_open_for_the_recipients_organisation_until_resolved() -> None:
    report = reports.submit("rpt_1", recipient(), NewReport(text="Bantuan dijual kembali"), NOW)
    assert (report.status, report.organisation_id, report.created_at) == ("open", "org_1", NOW)
    resolved = reports.resolve(report, Resolution(outcome="dismissed", note="sudah dicek"), STAFF, NOW)
    assert (resolved.status, resolved.resolved_by, resolved.outcome) == ("resolved", "staff-1", "dismissed")
    assert report.status == "open"  # the original stays as it was
