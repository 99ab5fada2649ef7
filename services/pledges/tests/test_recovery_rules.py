"""Taking back what a crash lost (pure): a pledge, or its last move, announced by its event and missing from
its ledger returns with the announced state, or is cancelled when its units went to others meanwhile."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ksbb_contracts.events.pledges import (
    PledgeCancelled,
    PledgeCreated,
    PledgeRestated,
    pledge_state_digest,
)
from ksbb_contracts.vocab import PledgeStatus
from ksbb_pledges.domain.errors import IdempotencyKeyReused
from ksbb_pledges.domain.ledger import LedgerChange, reserve, transition
from ksbb_pledges.domain.pledge import Ledger
from ksbb_pledges.domain.recovery import KNOWN, MOVE_RECOVERED, NOT_KEPT, NOT_KEPT_REASON, RECOVERED, recover

from .test_ledger_rules import NOW, assert_totals_consistent, open_ledger, pledge, reserved

pytestmark = pytest.mark.unit
LATER = NOW + timedelta(minutes=5)


def created(ledger: Ledger, pledge_id: str, quantity: int) -> tuple[Ledger, PledgeCreated]:
    """The ledger after a reservation, and the event it announced."""
    change = reserve(ledger, pledge(pledge_id, quantity), now=NOW)
    (event,) = [e for e in change.events if isinstance(e, PledgeCreated)]
    return change.applied_to(ledger), event


def recovered(ledger: Ledger, event: PledgeCreated, reason: str | None = None) -> LedgerChange[str]:
    return recover(ledger, event.pledge, reason=reason, occurred_at=event.occurred_at, now=LATER)


def test_a_pledge_lost_after_its_event_returns_as_announced_with_its_units() -> None:
    before = open_ledger(10)
    after, event = created(before, "plg_1", 4)
    change = recovered(before, event)  # the database lost the reservation, its event was out
    assert change.result == RECOVERED
    taken_back = change.applied_to(before)
    assert [p["pledge_id"] for p in taken_back["pledges"]] == ["plg_1"]
    assert (taken_back["committed"], taken_back["live_pledges"]) == (after["committed"], 1) == (4, 1)
    assert_totals_consistent(taken_back)
    (restated,) = [e for e in change.events if isinstance(e, PledgeRestated)]
    assert restated.pledge == event.pledge  # every view already holding it sees nothing new
    assert restated.state_digest == pledge_state_digest(event.pledge)
    # The donor's retry of the create (same Idempotency-Key, same request) finds it; another request does not.
    assert reserve(taken_back, pledge("plg_1", 4, key="unknown-after-the-crash"), now=LATER).result.replayed
    with pytest.raises(IdempotencyKeyReused):
        reserve(taken_back, pledge("plg_1", 5), now=LATER)


def test_a_pledge_whose_units_went_to_others_meanwhile_returns_cancelled_and_says_why() -> None:
    before = open_ledger(10)
    _, event = created(before, "plg_1", 4)
    others = reserved(before, "plg_2", 8)  # after the crash another donor took what was left
    change = recovered(others, event)
    assert change.result == NOT_KEPT
    taken_back = change.applied_to(others)
    assert taken_back["committed"] == 8 and taken_back["live_pledges"] == 1  # never over-pledged
    (cancelled,) = change.departing()
    assert (cancelled["status"], cancelled["reason"], cancelled["version"]) == ("cancelled", NOT_KEPT_REASON, 2)
    (event_out,) = [e for e in change.events if isinstance(e, PledgeCancelled)]
    assert event_out.reason == NOT_KEPT_REASON and event_out.pledge.version == 2


def test_a_pledge_the_ledger_holds_at_the_announced_version_is_known() -> None:
    after, event = created(open_ledger(10), "plg_1", 4)
    assert recovered(after, event).noop and recovered(after, event).result == KNOWN


def moved(ledger: Ledger, action: str, **facts: object) -> tuple[Ledger, LedgerChange[object]]:
    """The ledger after its only pledge made a move, and the change (with its event)."""
    change = transition(ledger, ledger["pledges"][0], action, by="system", now=NOW, **facts)
    return change.applied_to(ledger), change


def test_a_lost_move_returns_and_moves_the_figures_with_it() -> None:
    held, _ = created(open_ledger(10), "plg_1", 4)
    confirmed, _ = moved(held, "confirm")
    dispatched, dispatch = moved(confirmed, "dispatch")
    change = recover(confirmed, dispatch.events[0].pledge, reason=None, occurred_at=NOW, now=LATER)
    assert change.result == MOVE_RECOVERED
    taken_back = change.applied_to(confirmed)
    (back,) = taken_back["pledges"]
    assert (back["status"], back["version"]) == (PledgeStatus.DISPATCHED.value, 3)
    assert (taken_back["committed"], taken_back["in_transit"]) == (dispatched["committed"], dispatched["in_transit"])
    assert back["history"][-1]["recovered"] is True
    assert_totals_consistent(taken_back)


def test_a_settled_pledge_lost_whole_returns_settled_with_what_was_received() -> None:
    before = open_ledger(10)
    held, _ = created(before, "plg_1", 4)
    dispatched, _ = moved(moved(held, "confirm")[0], "dispatch")
    _, delivery = moved(dispatched, "deliver", received_quantity=3)
    change = recover(before, delivery.events[0].pledge, reason=None, occurred_at=NOW, now=LATER)
    assert change.result == RECOVERED
    (settled,) = change.departing()  # straight to the per-pledge collection
    assert (settled["status"], settled["received_quantity"]) == ("delivered", 3)
    taken_back = change.applied_to(before)
    assert (taken_back["committed"], taken_back["delivered"], taken_back["live_pledges"]) == (3, 3, 0)
