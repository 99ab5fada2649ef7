"""Unit tests of the needs rules: posting, changing, closing, ledger quantities, fulfilment, recurrence."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from ksbb_contracts.events.registry import NeedCancelled, NeedChanged, NeedClosed, NeedFulfilled, NeedOpened
from ksbb_contracts.vocab import Item, NeedStatus, RecipientStatus, Recurrence
from ksbb_registry.domain import needs, recurrence
from ksbb_registry.domain.errors import (
    BelowCommitted,
    DescriptionRequired,
    NeededByInPast,
    NeedNotOpen,
    RecipientNotActive,
)
from ksbb_registry.domain.needs import Ledger, NewNeed

from .builders import NOW, need, recipient

pytestmark = pytest.mark.unit
TODAY = NOW.date()
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31))
recurring = st.sampled_from([Recurrence.WEEKLY, Recurrence.MONTHLY])


def request(**overrides: object) -> NewNeed:
    """A need for 10 sembako packages, needed in two weeks."""
    fields: dict[str, object] = {
        "item": Item.SEMBAKO,
        "quantity": 10,
        "needed_by": TODAY + timedelta(days=14),
    }
    fields.update(overrides)
    return NewNeed.model_validate(fields)


# -- posting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in RecipientStatus if s is not RecipientStatus.ACTIVE])
def test_only_an_active_recipient_posts_needs(status: RecipientStatus) -> None:
    with pytest.raises(RecipientNotActive) as refused:
        needs.post("need_9", recipient(status), request(), "staff-1", NOW)
    assert (refused.value.status, refused.value.field) == (status.value, "recipient_id")


def test_other_items_need_a_description_and_needed_by_may_not_lie_in_the_past() -> None:
    with pytest.raises(DescriptionRequired) as undescribed:
        needs.post("need_9", recipient(), request(item=Item.OTHER), "staff-1", NOW)
    assert undescribed.value.field == "item_description"
    assert needs.post("need_9", recipient(), request(item=Item.OTHER, item_description="Kasur"), "s", NOW)
    with pytest.raises(NeededByInPast):
        needs.post("need_9", recipient(), request(needed_by=TODAY - timedelta(days=1)), "staff-1", NOW)
    assert (
        needs.post("need_9", recipient(), request(needed_by=TODAY), "staff-1", NOW).after.needed_by == TODAY
    )


def test_a_posted_need_is_open_with_the_catalogue_unit_an_empty_ledger_and_one_event() -> None:
    change = needs.post("need_9", recipient(), request(quantity=12), "rcp-account", NOW)
    posted = change.after
    assert (posted.status, posted.unit, posted.version, posted.created_by) == (
        NeedStatus.OPEN,
        "paket",
        1,
        "rcp-account",
    )
    assert posted.ledger == Ledger(requested=12)
    assert (posted.kota_code, posted.rw) == ("31.71", 5)
    assert (posted.series_id, posted.period_start, posted.series_next_at) == (None, None, None)
    [opened] = change.events
    assert isinstance(opened, NeedOpened) and opened.need.quantity == 12 and opened.occurred_at == NOW


def test_a_recurring_need_starts_its_series_today() -> None:
    posted = needs.post("need_9", recipient(), request(recurrence=Recurrence.WEEKLY), "staff-1", NOW).after
    assert (posted.series_id, posted.period_start) == ("need_9", TODAY)
    assert posted.series_next_at == datetime(2026, 3, 9, tzinfo=UTC)


# -- changing, cancelling, closing ---------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in NeedStatus if s is not NeedStatus.OPEN])
def test_only_open_needs_change_or_are_cancelled(status: NeedStatus) -> None:
    with pytest.raises(NeedNotOpen):
        needs.revise(need(status), {"priority": "low"}, 3, NOW)
    with pytest.raises(NeedNotOpen):
        needs.cancel(need(status), "tidak perlu", 3, NOW)
    assert needs.close(need(status), "recipient_suspended", 3, NOW) is None


@given(quantity=st.integers(min_value=1, max_value=1000), committed=st.integers(min_value=0, max_value=1000))
def test_a_quantity_may_not_drop_below_what_was_committed(quantity: int, committed: int) -> None:
    current = need(ledger=Ledger(requested=10, committed=committed, ledger_version=1))
    if quantity < committed:
        with pytest.raises(BelowCommitted) as refused:
            needs.revise(current, {"quantity": quantity}, 3, NOW)
        assert (refused.value.committed, refused.value.field) == (committed, "quantity")
    else:
        change = needs.revise(current, {"quantity": quantity}, 3, NOW)
        assert (change is None) == (quantity == current.quantity)


def test_a_changed_need_publishes_its_next_version_and_notes_stay_private() -> None:
    change = needs.revise(need(), {"quantity": 12, "notes": "antar pagi"}, 3, NOW)
    assert change is not None and set(change.fields) == {"quantity", "notes"}
    [changed] = change.events
    assert isinstance(changed, NeedChanged) and (changed.need.quantity, changed.need.version) == (12, 3)
    notes_only = needs.revise(need(), {"notes": "antar pagi"}, 3, NOW)
    assert notes_only is not None and notes_only.events == ()


def test_cancel_and_close_end_the_series_with_their_reason() -> None:
    series = need(recurrence=Recurrence.WEEKLY, series_id="need_1", series_next_at=NOW + timedelta(days=3))
    cancelled = needs.cancel(series, "seri dihentikan", 3, NOW)
    assert cancelled.after.status is NeedStatus.CANCELLED and cancelled.cleared == ("series_next_at",)
    assert isinstance(cancelled.events[0], NeedCancelled) and cancelled.events[0].reason == "seri dihentikan"
    closed = needs.close(series, needs.closure_reason(RecipientStatus.ARCHIVED), 3, NOW)
    assert closed is not None and closed.after.status_reason == "recipient_archived"
    assert isinstance(closed.events[0], NeedClosed) and closed.cleared == ("series_next_at",)
    assert needs.closure_reason(RecipientStatus.SUSPENDED) == "recipient_suspended"


# -- ledger and fulfilment -----------------------------------------------------------------------

quantities = st.integers(min_value=0, max_value=500)


@given(requested=quantities, delivered=quantities, extra=st.integers(min_value=0, max_value=50))
def test_fulfilled_exactly_when_deliveries_reach_a_positive_request(
    requested: int, delivered: int, extra: int
) -> None:
    assert needs.is_fulfilled(requested, delivered) == (requested > 0 and delivered >= requested)
    if needs.is_fulfilled(requested, delivered):
        assert needs.is_fulfilled(requested, delivered + extra)  # more deliveries never undo it
    if requested > 0:
        assert needs.is_fulfilled(requested, requested) and not needs.is_fulfilled(requested, requested - 1)


@given(
    current_version=st.integers(min_value=0, max_value=20),
    event_version=st.integers(min_value=0, max_value=20),
    requested=st.integers(min_value=1, max_value=50),
    delivered=st.integers(min_value=0, max_value=60),
    status=st.sampled_from(list(NeedStatus)),
)
def test_ledger_events_apply_once_in_version_order_and_fulfil_an_open_need(
    current_version: int, event_version: int, requested: int, delivered: int, status: NeedStatus
) -> None:
    current = need(status, ledger=Ledger(requested=requested, ledger_version=current_version))
    ledger = Ledger(
        requested=requested, committed=delivered, delivered=delivered, ledger_version=event_version
    )
    change = needs.record_ledger(current, ledger, 3, NOW)
    same_figures = delivered == 0
    if event_version < current_version or (event_version == current_version and same_figures):
        assert change is None  # stale or redelivered: nothing changes
        return
    # Newer, or the same version with other figures (the owner reused it after a crash): applied.
    assert change is not None and change.after.ledger == ledger
    fulfils = status is NeedStatus.OPEN and delivered >= requested
    assert change.after.status is (NeedStatus.FULFILLED if fulfils else status)
    assert [type(e) for e in change.events] == ([NeedFulfilled] if fulfils else [])
    assert change.fields == (("ledger", "status", "status_reason") if fulfils else ("ledger",))


# -- recurrence ----------------------------------------------------------------------------------


@given(start=days)
def test_a_weekly_series_continues_seven_days_later(start: date) -> None:
    assert recurrence.following_period(start, Recurrence.WEEKLY) == start + timedelta(days=7)


@given(start=days)
def test_a_monthly_series_continues_on_the_same_day_of_next_month_or_its_last_day(start: date) -> None:
    following = recurrence.following_period(start, Recurrence.MONTHLY)
    assert following is not None
    assert (following.year * 12 + following.month) - (start.year * 12 + start.month) == 1
    last_day = calendar.monthrange(following.year, following.month)[1]
    assert following.day == min(start.day, last_day)
    assert 28 <= (following - start).days <= 31


@given(start=days, today=days, every=recurring)
def test_the_period_due_today_starts_after_the_previous_and_contains_today(
    start: date, today: date, every: Recurrence
) -> None:
    due = recurrence.next_period_start(start, every, today)
    first_following = recurrence.advance(start, every)
    if today < first_following:
        assert due is None  # the current period is still the open one
        return
    assert due is not None
    following = recurrence.advance(due, every)
    assert start < due <= today < following  # after the previous period; today lies within it
    if every is Recurrence.WEEKLY:
        assert (due - start).days % 7 == 0


@given(start=days, today=days)
def test_one_off_needs_never_recur(start: date, today: date) -> None:
    assert recurrence.next_period_start(start, Recurrence.NONE, today) is None
    assert recurrence.following_period(start, Recurrence.NONE) is None


@given(
    period_start=days,
    lead=st.integers(min_value=0, max_value=60),
    periods=st.integers(min_value=1, max_value=8),
)
def test_the_next_period_repeats_the_request_with_dates_shifted(
    period_start: date, lead: int, periods: int
) -> None:
    previous = need(
        recurrence=Recurrence.WEEKLY,
        series_id="need_1",
        period_start=period_start,
        needed_by=period_start + timedelta(days=lead),
        notes="antar ke balai RW",
        ledger=Ledger(requested=10, committed=4, delivered=4, ledger_version=3),
    )
    today = period_start + timedelta(days=7 * periods + 3)
    assume(today <= date(2040, 12, 31))
    start = needs.due_period(previous, today)
    assert start == period_start + timedelta(days=7 * periods)
    change = needs.next_period(previous, start, "need_2", NOW)
    following = change.after
    assert (following.need_id, following.series_id, following.status) == ("need_2", "need_1", NeedStatus.OPEN)
    assert following.period_start == start and following.needed_by == start + timedelta(days=lead)
    assert following.series_next_at == recurrence.start_of(start + timedelta(days=7))
    assert following.ledger == Ledger(requested=10) and following.created_by == needs.RECURRENCE_AUTHOR
    assert (following.quantity, following.notes, following.item) == (10, "antar ke balai RW", Item.SEMBAKO)
    [opened] = change.events
    assert isinstance(opened, NeedOpened) and opened.need.period_start == start
    assert needs.due_period(need(), today) is None  # a one-off need has no series


@given(
    held_version=st.integers(min_value=1, max_value=20),
    event_version=st.integers(min_value=1, max_value=20),
    held_committed=st.integers(min_value=0, max_value=50),
    committed=st.integers(min_value=0, max_value=50),
    restated=st.booleans(),
)
def test_the_ledger_owner_is_authoritative_when_a_version_repeats_with_other_figures_or_is_restated(
    held_version: int, event_version: int, held_committed: int, committed: int, restated: bool
) -> None:
    current = need(NeedStatus.OPEN, ledger=Ledger(requested=50, committed=held_committed, ledger_version=held_version))
    ledger = Ledger(requested=50, committed=committed, ledger_version=event_version)
    change = needs.record_ledger(current, ledger, 3, NOW, restated=restated)
    reason = needs.ledger_repair(current.ledger, ledger, restated=restated)
    differs = held_committed != committed
    if event_version > held_version:
        assert reason is None and change is not None and change.after.ledger == ledger
    elif differs and (event_version == held_version or restated):
        assert reason == (needs.SAME_VERSION_OTHER_FIGURES if event_version == held_version else needs.RESTATED)
        assert change is not None and change.after.ledger == ledger
    else:
        assert reason is None and change is None
