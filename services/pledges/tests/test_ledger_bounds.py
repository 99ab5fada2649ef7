"""Bounded ledgers (pure): only live pledges stay, totals survive settled pledges leaving, the live-pledge limit
and the worst-case document size it implies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import bson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ksbb_contracts import limits as L
from ksbb_contracts.vocab import NeedStatus
from ksbb_pledges.domain.bounds import (
    DOCUMENT_LIMIT_BYTES,
    MAX_LIVE_PLEDGES,
    bson_size,
    worst_case_ledger_bytes,
    worst_case_pledge,
)
from ksbb_pledges.domain.errors import IllegalTransition, OverPledged, ReceivedExceedsPledged, TooManyLivePledges
from ksbb_pledges.domain.ledger import LedgerChange, apply_need, expire, is_live, reserve, transition
from ksbb_pledges.domain.lifecycle import TRANSITIONS, ExpiryPolicy, quantities
from ksbb_pledges.domain.pledge import Ledger, Pledge

from .test_ledger_rules import CALLER_ACTIONS, NOW, need, open_ledger, pledge

pytestmark = pytest.mark.unit


def stored(change: LedgerChange[Any], ledger: Ledger) -> Ledger:
    """The ledger as the store keeps it after a change: settled pledges have moved out to their copies."""
    after = change.applied_to(ledger)
    gone = {p["pledge_id"] for p in change.departing()}
    return {**after, "pledges": [p for p in after["pledges"] if p["pledge_id"] not in gone], "leaving": []}


# -- the document size --------------------------------------------------------------------------------


def test_the_size_arithmetic_is_bson_itself() -> None:
    worst = worst_case_pledge()
    assert bson_size(worst) == len(bson.encode(worst))
    ledger = open_ledger(10)
    assert bson_size(ledger) == len(bson.encode(ledger))


def test_the_worst_case_ledger_stays_well_inside_the_document_limit() -> None:
    worst = worst_case_ledger_bytes()
    assert worst * 2 < DOCUMENT_LIMIT_BYTES
    assert worst > MAX_LIVE_PLEDGES * bson_size(worst_case_pledge())


@pytest.mark.parametrize("ending", ["deliver", "cancel", "reject"])
def test_no_real_pledge_is_larger_than_the_worst_case(ending: str) -> None:
    ledger = open_ledger(L.QUANTITY[1])
    made = {**pledge("p" * L.ID[1], L.QUANTITY[1]), "note": "\U0001f4e6" * L.PLEDGE_NOTE_MAX}
    ledger = reserve(ledger, made, now=NOW).applied_to(ledger)
    by = "facilitator:" + "o" * L.ID[1]
    for action in ("confirm", "dispatch", ending) if ending == "deliver" else ("confirm", ending):
        held = ledger["pledges"][0]
        ledger = transition(
            ledger,
            held,
            action,
            by=by,
            now=NOW,
            received_quantity=L.QUANTITY[1],
            proof_ref="\U0001f4e6" * L.PROOF_REF_MAX,
            reason="\U0001f4e6" * L.PLEDGE_REASON[1],
        ).applied_to(ledger)
    assert len(bson.encode(ledger["pledges"][0])) <= bson_size(worst_case_pledge())


# -- the live-pledge limit ----------------------------------------------------------------------------


def test_a_full_ledger_refuses_new_pledges_until_one_settles() -> None:
    ledger = {**open_ledger(5000), "live_pledges": MAX_LIVE_PLEDGES - 1}
    ledger = stored(reserve(ledger, pledge("plg_last", 1), now=NOW), ledger)
    assert ledger["live_pledges"] == MAX_LIVE_PLEDGES
    with pytest.raises(TooManyLivePledges) as refused:
        reserve(ledger, pledge("plg_one_more", 1), now=NOW)
    assert refused.value.limit == MAX_LIVE_PLEDGES
    cancelled = transition(ledger, ledger["pledges"][-1], "cancel", by="donor:self", now=NOW)
    assert [p["pledge_id"] for p in cancelled.departing()] == ["plg_last"]
    freed = stored(cancelled, ledger)
    assert freed["live_pledges"] == MAX_LIVE_PLEDGES - 1
    assert not reserve(freed, pledge("plg_one_more", 1), now=NOW).noop


def test_settled_pledges_still_leaving_take_their_slot() -> None:
    ledger = {**open_ledger(50), "live_pledges": MAX_LIVE_PLEDGES - 1, "leaving": [pledge("plg_old", 1)]}
    with pytest.raises(TooManyLivePledges):
        reserve(ledger, pledge("plg_new", 1), now=NOW)


def test_a_retried_create_finds_its_pledge_while_it_is_leaving() -> None:
    ledger = open_ledger(10)
    ledger = reserve(ledger, pledge("plg_1", 4), now=NOW).applied_to(ledger)
    change = transition(ledger, ledger["pledges"][0], "cancel", by="donor:self", now=NOW)
    after = change.applied_to(ledger)
    leaving = {**after, "pledges": [], "leaving": change.departing()}
    again = reserve(leaving, pledge("plg_1", 4), now=NOW)
    assert again.noop and again.result.replayed and again.result.pledge["status"] == "cancelled"


def test_a_bulk_release_lets_every_released_pledge_leave() -> None:
    ledger = open_ledger(20)
    for pledge_id in ("plg_a", "plg_b"):
        ledger = stored(reserve(ledger, pledge(pledge_id, 3), now=NOW), ledger)
    held = ledger["pledges"][1]
    ledger = stored(transition(ledger, held, "confirm", by="x", now=NOW), ledger)
    ledger = stored(transition(ledger, ledger["pledges"][1], "dispatch", by="x", now=NOW), ledger)
    closing = apply_need(ledger, need(20, status=NeedStatus.CLOSED, version=2), "closed", NOW)
    assert [p["pledge_id"] for p in closing.departing()] == ["plg_a"]
    after = stored(closing, ledger)
    assert [p["pledge_id"] for p in after["pledges"]] == ["plg_b"]
    assert (after["committed"], after["in_transit"], after["live_pledges"]) == (3, 3, 1)


# -- totals when settled pledges are gone from the list ------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 12), st.booleans()),
        st.tuples(st.sampled_from(CALLER_ACTIONS), st.integers(0, 20), st.integers(0, 12)),
        st.tuples(st.just("expire"), st.integers(40, 100), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(requested=st.integers(1, 30), steps=operations)
def test_totals_and_live_count_hold_when_only_live_pledges_are_kept(
    requested: int, steps: list[tuple[Any, ...]]
) -> None:
    ledger = open_ledger(requested)
    every: dict[str, Pledge] = {}  # the need's whole history: the ledger's pledges and the moved-out copies
    for number, step in enumerate(steps):
        change: LedgerChange[Any]
        if step[0] == "reserve":
            try:
                change = reserve(ledger, pledge(f"plg_{number}", step[1]), now=NOW, allow_partial=step[2])
            except OverPledged:
                continue
        elif step[0] == "expire":
            change = expire(ledger, NOW + timedelta(hours=step[1]), ExpiryPolicy())
            if change.noop:
                continue
        else:
            action, index, received = step
            if not ledger["pledges"]:
                continue
            held = ledger["pledges"][index % len(ledger["pledges"])]
            try:
                change = transition(ledger, held, action, by="x", now=NOW, received_quantity=received)
            except (IllegalTransition, ReceivedExceedsPledged):
                continue
            if change.noop:  # the same move again (a retry): nothing changes
                continue
            assert TRANSITIONS[action].target.value == change.changed()[0]["status"]
        assert all(not is_live(p) for p in change.departing())
        every.update({p["pledge_id"]: p for p in change.changed()})
        ledger = stored(change, ledger)
        assert all(is_live(p) for p in ledger["pledges"])
        q = quantities(every.values())
        totals = (ledger["committed"], ledger["in_transit"], ledger["delivered"])
        assert totals == (q.committed, q.in_transit, q.delivered)
        assert ledger["committed"] <= ledger["requested"]
        assert ledger["live_pledges"] == len(ledger["pledges"]) == sum(map(is_live, every.values()))
