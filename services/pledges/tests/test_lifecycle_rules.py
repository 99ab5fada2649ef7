"""The pledge lifecycle rules (pure): transition table, who may act, quantities, expiry decisions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from ksbb_contracts.vocab import PledgeStatus
from ksbb_pledges.domain.errors import IllegalTransition
from ksbb_pledges.domain.lifecycle import (
    TRANSITIONS,
    Actor,
    ExpiryPolicy,
    check_transition,
    expiry_decision,
    may,
    quantities,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_every_state_outside_the_sources_is_refused(action: str) -> None:
    transition = TRANSITIONS[action]
    for status in PledgeStatus:
        if status in transition.sources:
            assert check_transition(action, status) is transition.target
        else:
            with pytest.raises(IllegalTransition):
                check_transition(action, status)


def test_who_may_act() -> None:
    assert may("confirm", {Actor.RECIPIENT}, "own_delivery")
    assert not may("confirm", {Actor.DONOR}, "own_delivery")
    assert may("dispatch", {Actor.FACILITATOR}, "distribution_partner")
    assert not may("dispatch", {Actor.FACILITATOR}, "own_delivery")
    assert not may("cancel", {Actor.FACILITATOR, Actor.RECIPIENT}, "own_delivery")
    assert not may("expire", {Actor.ADMIN}, "own_delivery")


def test_quantities_follow_the_sahana_model() -> None:
    pledges = [
        {"status": "pledged", "quantity": 2},
        {"status": "confirmed", "quantity": 3},
        {"status": "dispatched", "quantity": 4},
        {"status": "delivered", "quantity": 5, "delivered_quantity": 4},
        {"status": "cancelled", "quantity": 7},
        {"status": "rejected", "quantity": 8},
        {"status": "expired", "quantity": 9},
    ]
    q = quantities(pledges)
    assert (q.committed, q.in_transit, q.delivered) == (2 + 3 + 4 + 4, 4, 4)


def test_expiry_decisions() -> None:
    policy = ExpiryPolicy()
    pledged = {"status": "pledged", "created_at": NOW, "planned_date": "2026-03-05"}
    assert expiry_decision(pledged, NOW + timedelta(hours=35), policy) is None
    remind = expiry_decision(pledged, NOW + timedelta(hours=36), policy)
    assert remind is not None and remind.action == "remind" and remind.deadline == NOW + timedelta(hours=48)
    assert expiry_decision({**pledged, "reminded_stage": "pledged"}, NOW + timedelta(hours=40), policy) is None
    expire = expiry_decision({**pledged, "reminded_stage": "pledged"}, NOW + timedelta(hours=48), policy)
    assert expire is not None and (expire.action, expire.reason) == ("expire", "not_confirmed")
    confirmed = {**pledged, "status": "confirmed", "reminded_stage": "pledged"}
    deadline = datetime.combine(date(2026, 3, 7), datetime.min.time(), tzinfo=UTC)
    assert expiry_decision(confirmed, deadline - timedelta(hours=13), policy) is None
    again = expiry_decision(confirmed, deadline - timedelta(hours=1), policy)
    assert again is not None and again.action == "remind"  # a new stage gets its own reminder
    late = expiry_decision(confirmed, deadline, policy)
    assert late is not None and (late.action, late.reason) == ("expire", "not_dispatched")
    for final in ("dispatched", "delivered", "cancelled"):
        assert expiry_decision({**pledged, "status": final}, NOW + timedelta(days=30), policy) is None
