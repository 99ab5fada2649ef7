"""The need ledger's decisions (pure): reservation incl. over-pledge, every transition, releases, expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ksbb_contracts.events.pledges import (
    NeedLedgerChanged,
    PledgeCancelled,
    PledgeCreated,
    PledgeExpired,
    PledgeExpiring,
)
from ksbb_contracts.events.registry import NeedPublic
from ksbb_contracts.vocab import Item, NeedStatus, PledgeStatus, Priority
from ksbb_pledges.domain.errors import (
    IdempotencyKeyReused,
    IllegalTransition,
    NeedNotOpen,
    OverPledged,
    PlannedDatePast,
    ReceivedExceedsPledged,
    RecipientUnavailable,
)
from ksbb_pledges.domain.ledger import (
    TRANSITION_EVENTS,
    apply_need,
    block_recipient,
    expire,
    new_ledger,
    reserve,
    transition,
)
from ksbb_pledges.domain.lifecycle import LIVE, TRANSITIONS, ExpiryPolicy, quantities
from ksbb_pledges.domain.pledge import Ledger, Pledge, check_planned_date, new_pledge

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CALLER_ACTIONS = ("confirm", "dispatch", "deliver", "cancel", "reject")


def need(quantity: int = 10, *, status: NeedStatus = NeedStatus.OPEN, version: int = 1) -> NeedPublic:
    return NeedPublic(
        need_id="ned_1",
        recipient_id="rcp_1",
        organisation_id="org_1",
        kelurahan_code="31.71.01.1001",
        item=Item.SEMBAKO,
        quantity=quantity,
        unit="paket",
        priority=Priority.MEDIUM,
        needed_by=date(2026, 3, 20),
        status=status,
        version=version,
    )


def open_ledger(requested: int = 10) -> Ledger:
    """A ledger as the registry's first snapshot leaves it: open, nothing pledged."""
    fresh = new_ledger(need(requested), recipient_blocked=False, recipient_version=0, now=NOW)
    return apply_need(fresh, need(requested), None, NOW).applied_to(fresh)


def pledge(pledge_id: str, quantity: int, *, key: str = "hash", mode: str = "own_delivery") -> Pledge:
    return new_pledge(
        pledge_id=pledge_id,
        donor_id="dnr_1",
        quantity=quantity,
        mode=mode,
        planned_date=date(2026, 3, 5),
        now=NOW,
        request_hash=key,
    )


def reserved(ledger: Ledger, pledge_id: str, quantity: int) -> Ledger:
    return reserve(ledger, pledge(pledge_id, quantity), now=NOW).applied_to(ledger)


def in_status(status: PledgeStatus, quantity: int = 4) -> tuple[Ledger, Pledge]:
    """A ledger holding one pledge in a given state, its totals consistent with it."""
    ledger = open_ledger()
    held = {**pledge("plg_1", quantity), "status": status.value}
    if status is PledgeStatus.DELIVERED:
        held["delivered_quantity"] = quantity
    q = quantities([held])
    return {
        **ledger,
        "pledges": [held],
        "committed": q.committed,
        "in_transit": q.in_transit,
        "delivered": q.delivered,
    }, held


def assert_totals_consistent(ledger: Ledger) -> None:
    """The stored totals equal a recount of the pledges (the delta arithmetic never drifts)."""
    q = quantities(ledger["pledges"])
    assert (ledger["committed"], ledger["in_transit"], ledger["delivered"]) == (q.committed, q.in_transit, q.delivered)


# -- reservation --------------------------------------------------------------------------------------


def test_reservation_commits_and_announces() -> None:
    ledger = open_ledger(10)
    change = reserve(ledger, pledge("plg_1", 4), now=NOW)
    after = change.applied_to(ledger)
    assert (after["committed"], after["ledger_version"]) == (4, ledger["ledger_version"] + 1)
    assert [type(e) for e in change.events] == [PledgeCreated, NeedLedgerChanged]
    assert change.events[1].committed == 4 and change.events[1].requested == 10
    assert change.result.replayed is False and change.result.pledge["quantity"] == 4


def test_over_pledge_names_what_is_still_available() -> None:
    ledger = reserved(open_ledger(10), "plg_1", 4)
    with pytest.raises(OverPledged) as refused:
        reserve(ledger, pledge("plg_2", 7), now=NOW)
    assert refused.value.available == 6
    exact = reserved(ledger, "plg_2", 6)
    assert exact["committed"] == 10
    with pytest.raises(OverPledged) as full:
        reserve(exact, pledge("plg_3", 1), now=NOW)
    assert full.value.available == 0


def test_partial_reservation_takes_what_remains_but_never_nothing() -> None:
    ledger = reserved(open_ledger(10), "plg_1", 7)
    change = reserve(ledger, pledge("plg_2", 5), now=NOW, allow_partial=True)
    assert change.result.pledge["quantity"] == 3
    full = change.applied_to(ledger)
    with pytest.raises(OverPledged):
        reserve(full, pledge("plg_3", 5), now=NOW, allow_partial=True)


def test_retried_reservation_returns_the_first_and_a_reused_key_is_refused() -> None:
    ledger = reserved(open_ledger(10), "plg_1", 4)
    again = reserve(ledger, pledge("plg_1", 4), now=NOW + timedelta(minutes=1))
    assert again.noop and again.result.replayed and again.result.pledge["created_at"] == NOW
    with pytest.raises(IdempotencyKeyReused):
        reserve(ledger, pledge("plg_1", 5, key="another request"), now=NOW)


@pytest.mark.parametrize("status", [NeedStatus.CLOSED, NeedStatus.FULFILLED, NeedStatus.CANCELLED])
def test_a_need_no_longer_open_takes_no_pledges(status: NeedStatus) -> None:
    ledger = {**open_ledger(10), "status": status.value}
    with pytest.raises(NeedNotOpen) as refused:
        reserve(ledger, pledge("plg_1", 1), now=NOW)
    assert refused.value.need_status == status.value


def test_a_blocked_recipient_takes_no_pledges() -> None:
    with pytest.raises(RecipientUnavailable):
        reserve({**open_ledger(10), "recipient_blocked": True}, pledge("plg_1", 1), now=NOW)


def test_planned_date_may_be_today_but_not_earlier() -> None:
    check_planned_date(NOW.date(), NOW.date())
    with pytest.raises(PlannedDatePast):
        check_planned_date(NOW.date() - timedelta(days=1), NOW.date())


# -- every lifecycle transition -----------------------------------------------------------------------


@pytest.mark.parametrize("status", list(PledgeStatus))
@pytest.mark.parametrize("action", CALLER_ACTIONS)
def test_every_transition_is_allowed_or_refused_by_the_table(action: str, status: PledgeStatus) -> None:
    ledger, held = in_status(status)
    if status not in TRANSITIONS[action].sources:
        with pytest.raises(IllegalTransition) as refused:
            transition(ledger, held, action, by="x", now=NOW, received_quantity=4, reason="r")
        assert refused.value.status == status.value and refused.value.action == action
        return
    change = transition(ledger, held, action, by="facilitator:org_1", now=NOW, received_quantity=4, reason="r")
    after = change.applied_to(ledger)
    moved = after["pledges"][0]
    assert moved["status"] == TRANSITIONS[action].target.value
    assert moved["version"] == held["version"] + 1
    assert moved["history"][-1]["by"] == "facilitator:org_1"
    assert isinstance(change.events[0], TRANSITION_EVENTS[action])
    assert change.events[0].pledge.status is TRANSITIONS[action].target
    assert_totals_consistent(after)


def test_a_partial_delivery_lowers_the_commitment_to_what_arrived() -> None:
    ledger, held = in_status(PledgeStatus.DISPATCHED, quantity=6)
    with pytest.raises(ReceivedExceedsPledged) as refused:
        transition(ledger, held, "deliver", by="x", now=NOW, received_quantity=7)
    assert (refused.value.received, refused.value.pledged) == (7, 6)
    after = transition(ledger, held, "deliver", by="x", now=NOW, received_quantity=5, proof_ref="foto").applied_to(
        ledger
    )
    assert (after["committed"], after["in_transit"], after["delivered"]) == (5, 0, 5)
    assert after["last_delivered_at"] == NOW
    assert after["pledges"][0]["history"][-1] == {
        "status": "delivered",
        "at": NOW,
        "by": "x",
        "received_quantity": 5,
        "proof_ref": "foto",
    }
    nothing = transition(ledger, held, "deliver", by="x", now=NOW, received_quantity=0).applied_to(ledger)
    assert nothing["committed"] == 0 and nothing["last_delivered_at"] is None


def test_cancel_and_reject_record_a_reason() -> None:
    ledger, held = in_status(PledgeStatus.PLEDGED)
    cancelled = transition(ledger, held, "cancel", by="donor:self", now=NOW).applied_to(ledger)
    assert cancelled["pledges"][0]["reason"] == "donor_cancelled" and cancelled["committed"] == 0
    rejected = transition(ledger, held, "reject", by="x", now=NOW, reason="tidak sesuai").applied_to(ledger)
    assert rejected["pledges"][0]["reason"] == "tidak sesuai"


# -- registry facts -----------------------------------------------------------------------------------


def test_a_closed_need_releases_waiting_pledges_but_not_dispatched_ones() -> None:
    ledger = open_ledger(20)
    for pledge_id in ("plg_p", "plg_c", "plg_d"):
        ledger = reserved(ledger, pledge_id, 3)
    for pledge_id, actions in (("plg_c", ["confirm"]), ("plg_d", ["confirm", "dispatch"])):
        for action in actions:
            held = next(p for p in ledger["pledges"] if p["pledge_id"] == pledge_id)
            ledger = transition(ledger, held, action, by="x", now=NOW).applied_to(ledger)
    change = apply_need(ledger, need(20, status=NeedStatus.CLOSED, version=2), "recipient_moved", NOW)
    after = change.applied_to(ledger)
    assert {p["pledge_id"]: p["status"] for p in after["pledges"]} == {
        "plg_p": "cancelled",
        "plg_c": "cancelled",
        "plg_d": "dispatched",
    }
    cancelled = [e for e in change.events if isinstance(e, PledgeCancelled)]
    assert {e.reason for e in cancelled} == {"recipient_moved"} and len(cancelled) == 2
    assert (after["committed"], after["status"]) == (3, "closed")
    assert apply_need(after, need(50, version=1), None, NOW).noop  # a stale snapshot changes nothing
    # (the same version with other content is the registry reusing it after a crash: test_need_replica_rules)


def test_blocking_a_recipient_releases_and_unblocking_does_not_restore() -> None:
    ledger = reserved(open_ledger(10), "plg_1", 4)
    blocked = block_recipient(ledger, 3, True, "recipient_suspended", NOW).applied_to(ledger)
    assert blocked["recipient_blocked"] and blocked["committed"] == 0
    assert blocked["pledges"][0]["reason"] == "recipient_suspended"
    assert block_recipient(blocked, 3, False, "recipient_unblocked", NOW).noop  # same version
    unblocked = block_recipient(blocked, 4, False, "recipient_unblocked", NOW).applied_to(blocked)
    assert not unblocked["recipient_blocked"] and unblocked["pledges"][0]["status"] == "cancelled"


# -- expiry -------------------------------------------------------------------------------------------


def test_expiry_reminds_once_then_expires_and_releases() -> None:
    policy = ExpiryPolicy()
    ledger = reserved(open_ledger(10), "plg_1", 4)
    assert expire(ledger, NOW + timedelta(hours=35), policy).noop
    reminder = expire(ledger, NOW + timedelta(hours=37), policy)
    assert reminder.result == ["reminded"] and [type(e) for e in reminder.events] == [PledgeExpiring]
    reminded = reminder.applied_to(ledger)
    assert reminded["pledges"][0]["reminded_stage"] == "pledged" and reminded["committed"] == 4
    assert expire(reminded, NOW + timedelta(hours=40), policy).noop  # reminded once only
    expiry = expire(reminded, NOW + timedelta(hours=48), policy)
    expired = expiry.applied_to(reminded)
    assert expiry.result == ["expired"] and isinstance(expiry.events[0], PledgeExpired)
    assert (expired["pledges"][0]["status"], expired["pledges"][0]["reason"]) == ("expired", "not_confirmed")
    assert expired["committed"] == 0 and isinstance(expiry.events[-1], NeedLedgerChanged)


# -- the invariant, for any sequence ------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 12), st.booleans()),
        st.tuples(st.sampled_from(CALLER_ACTIONS), st.integers(0, 20), st.integers(0, 12)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(requested=st.integers(1, 30), steps=operations)
def test_committed_never_exceeds_requested_and_equals_what_the_pledges_hold(
    requested: int, steps: list[tuple[Any, ...]]
) -> None:
    ledger = open_ledger(requested)
    for number, step in enumerate(steps):
        before = ledger
        if step[0] == "reserve":
            _, quantity, partial = step
            available = before["requested"] - before["committed"]
            try:
                change = reserve(ledger, pledge(f"plg_{number}", quantity), now=NOW, allow_partial=partial)
            except OverPledged as refused:
                assert refused.available == available and quantity > available
                assert available == 0 or not partial
                continue
            assert change.result.pledge["quantity"] == min(quantity, available)
        else:
            action, index, received = step
            if not ledger["pledges"]:
                continue
            held = ledger["pledges"][index % len(ledger["pledges"])]
            try:
                change = transition(ledger, held, action, by="x", now=NOW, received_quantity=received)
            except IllegalTransition:
                assert PledgeStatus(held["status"]) not in TRANSITIONS[action].sources
                continue
            except ReceivedExceedsPledged:
                assert received > held["quantity"]
                continue
        ledger = change.applied_to(ledger)
        assert ledger["committed"] <= ledger["requested"]
        live = sum(p["quantity"] for p in ledger["pledges"] if PledgeStatus(p["status"]) in LIVE)
        received_total = sum(p["delivered_quantity"] or 0 for p in ledger["pledges"] if p["status"] == "delivered")
        assert ledger["committed"] == live + received_total
        assert ledger["delivered"] == received_total
        assert_totals_consistent(ledger)
        announced = [e for e in change.events if isinstance(e, NeedLedgerChanged)]
        if announced:
            assert announced[-1].committed == ledger["committed"]
            assert ledger["ledger_version"] == before["ledger_version"] + 1
