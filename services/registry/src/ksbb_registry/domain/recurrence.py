"""Recurring needs: when a weekly or monthly series opens its next period."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ksbb_contracts.vocab import Recurrence


def next_period_start(period_start: date, recurrence: Recurrence, today: date) -> date | None:
    """Start of the period that should be open today for a series, if later than `period_start`.

    Several missed periods open only the current one (the latest start not after today).
    """
    if recurrence is Recurrence.NONE:
        return None
    candidate = period_start
    following = advance(candidate, recurrence)
    while following <= today:
        candidate = following
        following = advance(candidate, recurrence)
    return candidate if candidate > period_start else None


def following_period(period_start: date, recurrence: Recurrence) -> date | None:
    """When the next period of a series begins (None for a one-off need)."""
    return None if recurrence is Recurrence.NONE else advance(period_start, recurrence)


def advance(day: date, recurrence: Recurrence) -> date:
    """The same day one period later: +7 days, or the same day next month clamped to its length."""
    if recurrence is Recurrence.WEEKLY:
        return day + timedelta(days=7)
    month = day.month % 12 + 1
    year = day.year + (1 if day.month == 12 else 0)
    # Clamp to the month's length (31 Jan → 28/29 Feb).
    for candidate_day in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate_day))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def start_of(day: date) -> datetime:
    """Midnight UTC at the start of a day (when a period opens)."""
    return datetime.combine(day, time.min, tzinfo=UTC)
