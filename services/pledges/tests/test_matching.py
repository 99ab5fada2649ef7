"""The matching engine (pure): documented order, splitting, properties under hypothesis, fairness figure."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ksbb_contracts.vocab import Priority
from ksbb_pledges.domain.matching import Matcher, NeedCandidate, allocate, fairness_spread, proximity_tier

pytestmark = pytest.mark.unit

KELURAHAN = ["31.71.01.1001", "31.71.02.1001", "31.72.01.1001", "31.73.01.1001"]


def need(need_id: str, remaining: int, **kwargs: object) -> NeedCandidate:
    base: dict[str, object] = {
        "need_id": need_id,
        "recipient_id": f"rcp_{need_id}",
        "requested": max(remaining, 1),
        "remaining": remaining,
        "priority": Priority.MEDIUM,
        "needed_by": date(2026, 3, 20),
        "kelurahan_code": KELURAHAN[0],
    }
    base.update(kwargs)
    return NeedCandidate(**base)  # type: ignore[arg-type]


def test_priority_then_needed_by_then_anti_stacking() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    needs = [
        need("a_low", 5, priority=Priority.LOW),
        need("b_late", 5, needed_by=date(2026, 4, 1)),
        need("c_recent", 5, last_received_at=now, received_total=10),
        need("d_old", 5, last_received_at=now - timedelta(days=30), received_total=10),
        need("e_never", 5),
        need("f_high", 5, priority=Priority.HIGH, needed_by=date(2026, 5, 1)),
    ]
    order = [a.need_id for a in allocate(30, needs)]
    assert order == ["f_high", "e_never", "d_old", "c_recent", "b_late", "a_low"]


def test_less_received_per_household_then_unmet_share_then_proximity() -> None:
    when = datetime(2026, 2, 1, tzinfo=UTC)
    per_household = [
        need("a_rich", 5, last_received_at=when, received_total=100, households=10),
        need("b_poor", 5, last_received_at=when, received_total=100, households=100),
    ]
    assert [a.need_id for a in allocate(10, per_household)] == ["b_poor", "a_rich"]
    shares = [need("a_mostly_met", 2, requested=10), need("b_unmet", 10, requested=10)]
    assert [a.need_id for a in allocate(12, shares)] == ["b_unmet", "a_mostly_met"]
    near = [need("a_kota", 5, kelurahan_code="31.71.02.1001"), need("b_kecamatan", 5)]
    assert [a.need_id for a in allocate(10, near, ["31.71", "31.71.01"])] == ["b_kecamatan", "a_kota"]


def test_split_and_area_filter() -> None:
    needs = [need("a", 3), need("b", 4, kelurahan_code="31.72.01.1001"), need("c", 10)]
    allocation = allocate(9, needs)
    assert [(a.need_id, a.quantity) for a in allocation] == [("a", 3), ("b", 4), ("c", 2)]
    assert [a.need_id for a in allocate(9, needs, ["31.72"])] == ["b"]
    assert proximity_tier("31.71.01.1001", ["31.72"]) is None
    assert proximity_tier("31.71.01.1001", []) == 0


candidates = st.lists(
    st.builds(
        NeedCandidate,
        need_id=st.text("abcdef", min_size=1, max_size=4),
        recipient_id=st.sampled_from(["r1", "r2", "r3", "r4"]),
        requested=st.integers(1, 50),
        remaining=st.integers(0, 50),
        priority=st.sampled_from(list(Priority)),
        needed_by=st.dates(date(2026, 1, 1), date(2026, 12, 31)),
        kelurahan_code=st.sampled_from(KELURAHAN),
        households=st.integers(1, 200),
        last_received_at=st.none() | st.datetimes(datetime(2025, 1, 1), datetime(2026, 1, 1), timezones=st.just(UTC)),
        received_total=st.integers(0, 500),
    ),
    max_size=30,
)
area_lists = st.lists(st.sampled_from(["31.71", "31.72", "31.71.01", "31.73.01"]), max_size=2)


@settings(max_examples=200, deadline=None)
@given(quantity=st.integers(0, 300), needs=candidates, area=area_lists, seed=st.integers(0, 1000))
def test_allocation_properties(quantity: int, needs: list[NeedCandidate], area: list[str], seed: int) -> None:
    allocation = allocate(quantity, needs, area)
    by_id: dict[str, int] = {}
    for candidate in needs:
        by_id[candidate.need_id] = max(by_id.get(candidate.need_id, 0), candidate.remaining)
    assert sum(a.quantity for a in allocation) <= quantity
    assert len({a.need_id for a in allocation}) == len(allocation)
    for part in allocation:
        assert 1 <= part.quantity <= by_id[part.need_id]
    shuffled = list(needs)
    random.Random(seed).shuffle(shuffled)
    assert allocate(quantity, shuffled, list(reversed(area))) == allocation
    # Whatever could be placed was placed: leftovers only when every eligible need is full.
    eligible = {c.need_id for c in needs if c.remaining > 0 and proximity_tier(c.kelurahan_code, area) is not None}
    if sum(a.quantity for a in allocation) < quantity:
        assert {a.need_id for a in allocation} == eligible
        for part in allocation:  # each need took all it could
            assert part.quantity in {c.remaining for c in needs if c.need_id == part.need_id}


def test_fairness_ranks_spread_out_above_stacked() -> None:
    households = {"r1": 10, "r2": 10, "r3": 20, "r4": 5}
    spread = {"r1": 20, "r2": 20, "r3": 40, "r4": 10}
    stacked = {"r1": 90}
    assert fairness_spread(spread, households) == pytest.approx(1.0)
    assert fairness_spread(stacked, households) < 0.3
    assert fairness_spread(spread, households) > fairness_spread(stacked, households)


@given(
    st.dictionaries(st.sampled_from(["r1", "r2", "r3"]), st.integers(0, 100)),
    st.dictionaries(st.sampled_from(["r1", "r2", "r3"]), st.integers(1, 50), min_size=1),
)
def test_fairness_is_bounded(received: dict[str, int], households: dict[str, int]) -> None:
    assert 0.0 <= fairness_spread(received, households) <= 1.0


offers_strategy = st.lists(st.tuples(st.integers(0, 120), area_lists), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(needs=candidates, offers=offers_strategy)
def test_matcher_pours_offers_exactly_like_repeated_allocate(
    needs: list[NeedCandidate], offers: list[tuple[int, list[str]]]
) -> None:
    unique = list({c.need_id: c for c in needs}.values())
    matcher = Matcher(unique)
    current = {c.need_id: c for c in unique}
    for quantity, area in offers:
        expected = allocate(quantity, current.values(), area)
        assert matcher.allocate(quantity, area) == expected
        for part in expected:
            current[part.need_id] = replace(
                current[part.need_id], remaining=current[part.need_id].remaining - part.quantity
            )
    assert all(matcher.remaining(need_id) == need.remaining for need_id, need in current.items())


def test_matcher_refuses_duplicate_needs() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Matcher([need("a", 1), need("a", 2)])
