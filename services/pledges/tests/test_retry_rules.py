"""Pure rules of retries and limits: a repeated move answers the current state, dates stay within the horizon,
and the donor's access to the recipient's contact ends a set time after the delivery."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts.limits import HORIZON_DAYS
from ksbb_contracts.vocab import PledgeStatus
from ksbb_pledges.domain.contact import check_contact_visible, contact_access_ends
from ksbb_pledges.domain.errors import (
    AvailableUntilPast,
    AvailableUntilTooFar,
    ContactAccessEnded,
    IllegalTransition,
    PlannedDatePast,
    PlannedDateTooFar,
    PledgeNotLive,
)
from ksbb_pledges.domain.ledger import already_made, transition
from ksbb_pledges.domain.lifecycle import Actor
from ksbb_pledges.domain.offers import check_available_until
from ksbb_pledges.domain.pledge import check_planned_date

from .test_ledger_rules import NOW, in_status

pytestmark = pytest.mark.unit

MOVES = [
    (PledgeStatus.PLEDGED, "confirm", "recipient:rcp_1", {}),
    (PledgeStatus.CONFIRMED, "dispatch", "donor:self", {}),
    (PledgeStatus.DISPATCHED, "deliver", "facilitator:org_1", {"received_quantity": 3, "proof_ref": "foto"}),
    (PledgeStatus.PLEDGED, "cancel", "donor:self", {}),
    (PledgeStatus.CONFIRMED, "reject", "recipient:rcp_1", {"reason": "tidak sesuai"}),
]


@pytest.mark.parametrize(("status", "action", "by", "facts"), MOVES)
def test_repeating_a_move_changes_nothing_and_answers_the_current_state(
    status: PledgeStatus, action: str, by: str, facts: dict[str, object]
) -> None:
    ledger, held = in_status(status)
    moved = transition(ledger, held, action, by=by, now=NOW, **facts).applied_to(ledger)
    current = moved["pledges"][0]
    later = NOW + timedelta(minutes=5)
    again = transition(moved, current, action, by=by, now=later, **facts)
    assert again.noop and again.events == []
    assert again.result == (moved, current)
    assert already_made(
        current, action, by, dict(facts) or ({"reason": "donor_cancelled"} if action == "cancel" else {})
    )


@pytest.mark.parametrize(("status", "action", "by", "facts"), MOVES)
def test_the_same_move_by_someone_else_is_still_refused(
    status: PledgeStatus, action: str, by: str, facts: dict[str, object]
) -> None:
    ledger, held = in_status(status)
    moved = transition(ledger, held, action, by=by, now=NOW, **facts).applied_to(ledger)
    with pytest.raises(IllegalTransition):
        transition(moved, moved["pledges"][0], action, by="admin:self", now=NOW, **facts)


def test_a_receipt_with_other_figures_is_not_a_repetition() -> None:
    ledger, held = in_status(PledgeStatus.DISPATCHED)
    moved = transition(ledger, held, "deliver", by="x", now=NOW, received_quantity=3).applied_to(ledger)
    with pytest.raises(IllegalTransition):
        transition(moved, moved["pledges"][0], "deliver", by="x", now=NOW, received_quantity=4)
    with pytest.raises(IllegalTransition):
        transition(moved, moved["pledges"][0], "deliver", by="x", now=NOW, received_quantity=3, proof_ref="other")


def test_a_repeated_confirm_after_the_pledge_moved_on_answers_where_it_is_now() -> None:
    ledger, _ = in_status(PledgeStatus.PLEDGED)
    for action, by in (("confirm", "recipient:rcp_1"), ("dispatch", "donor:self")):
        ledger = transition(ledger, ledger["pledges"][0], action, by=by, now=NOW).applied_to(ledger)
    again = transition(ledger, ledger["pledges"][0], "confirm", by="recipient:rcp_1", now=NOW)
    assert again.noop and again.result[1]["status"] == "dispatched"


TODAY = date(2026, 3, 2)


@given(offset=st.integers(min_value=-800, max_value=800))
def test_planned_dates_and_offer_ends_lie_between_today_and_the_horizon(offset: int) -> None:
    day = TODAY + timedelta(days=offset)
    checks = (
        (check_planned_date, PlannedDatePast, PlannedDateTooFar),
        (check_available_until, AvailableUntilPast, AvailableUntilTooFar),
    )
    for check, past, too_far in checks:
        if offset < 0:
            with pytest.raises(past):
                check(day, TODAY)
        elif offset > HORIZON_DAYS:
            with pytest.raises(too_far):
                check(day, TODAY)
        else:
            check(day, TODAY)


def test_the_end_of_the_calendar_is_refused_without_overflow() -> None:
    with pytest.raises(PlannedDateTooFar):
        check_planned_date(date.max, TODAY)


DELIVERED_AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@given(
    window_hours=st.integers(min_value=0, max_value=24 * 365),
    seconds_after=st.integers(min_value=0, max_value=3600 * 24 * 400),
)
def test_the_contact_stays_open_exactly_until_the_window_after_delivery_ends(
    window_hours: int, seconds_after: int
) -> None:
    window = timedelta(hours=window_hours)
    now = DELIVERED_AT + timedelta(seconds=seconds_after)
    ends = DELIVERED_AT + window
    if now < ends:
        assert (
            check_contact_visible(
                {Actor.DONOR}, PledgeStatus.DELIVERED, delivered_at=DELIVERED_AT, now=now, after_delivery=window
            )
            == ends
        )
    else:
        with pytest.raises(ContactAccessEnded) as ended:
            check_contact_visible(
                {Actor.DONOR}, PledgeStatus.DELIVERED, delivered_at=DELIVERED_AT, now=now, after_delivery=window
            )
        assert ended.value.ended_at == ends


@pytest.mark.parametrize("status", [PledgeStatus.PLEDGED, PledgeStatus.CONFIRMED, PledgeStatus.DISPATCHED])
def test_a_live_pledge_keeps_the_contact_open_however_long_it_takes(status: PledgeStatus) -> None:
    far_later = DELIVERED_AT + timedelta(days=400)
    assert check_contact_visible({Actor.DONOR}, status, now=far_later, after_delivery=timedelta(0)) is None
    assert contact_access_ends(status, None, timedelta(days=14)) is None


@pytest.mark.parametrize("status", [PledgeStatus.CANCELLED, PledgeStatus.REJECTED, PledgeStatus.EXPIRED])
def test_an_ended_pledge_closes_the_contact_at_once(status: PledgeStatus) -> None:
    with pytest.raises(PledgeNotLive):
        check_contact_visible({Actor.DONOR}, status, now=DELIVERED_AT, after_delivery=timedelta(days=14))


def test_a_delivery_time_stored_without_zone_counts_as_utc() -> None:
    naive = DELIVERED_AT.replace(tzinfo=None)
    assert contact_access_ends(PledgeStatus.DELIVERED, naive, timedelta(days=14)) == DELIVERED_AT + timedelta(days=14)
