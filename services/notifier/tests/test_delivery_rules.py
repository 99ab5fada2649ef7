"""Delivery rules without I/O: the message body, what fails without an attempt, requeueing, concurrency and pace."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_notifier.adapters.limits import LocalRateGate, LocalSlots
from ksbb_notifier.domain.deliveries import (
    DueDelivery,
    Message,
    abandoned,
    pace,
    pick_within_limits,
    requeued,
    undeliverable_reason,
)
from ksbb_notifier.domain.endpoints import Endpoint

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
ENDPOINT = Endpoint("whe_1", "org_a", "https://ngo.example.org/hooks", True, 1, NOW, NOW)
MESSAGE = Message("msg_1", "ksbb.need.opened.v1", NOW, {"need": {"need_id": "need_1"}, "note": "Jalan Ø"}, "org_a", NOW)


def test_the_body_is_type_timestamp_and_data_only() -> None:
    body = MESSAGE.body()
    assert json.loads(body) == {
        "type": "ksbb.need.opened.v1",
        "timestamp": "2026-01-05T08:00:00Z",
        "data": {"need": {"need_id": "need_1"}, "note": "Jalan Ø"},
    }
    assert ", " not in body and "Ø" in body  # compact, UTF-8 as is
    assert '"timestamp":"2026-01-05T08:00:00Z"' in Message("m", "t", "2026-01-05T08:00:00Z", {}, None, NOW).body()


def test_deliveries_fail_without_an_attempt_when_nothing_can_be_sent() -> None:
    assert undeliverable_reason(None, MESSAGE) == "endpoint_deleted"
    assert undeliverable_reason(ENDPOINT, None) == "message_missing"
    assert undeliverable_reason(None, None) == "endpoint_deleted"
    off = Endpoint("whe_1", "org_a", "https://x.example", False, 1, NOW, NOW)
    assert undeliverable_reason(off, MESSAGE) == "endpoint_disabled"
    assert undeliverable_reason(ENDPOINT, MESSAGE) is None
    assert abandoned("endpoint_deleted", NOW) == {
        "status": "failed",
        "failed_at": NOW,
        "failure_reason": "endpoint_deleted",
    }


def test_a_requeued_delivery_is_due_now_on_a_fresh_schedule() -> None:
    assert requeued(NOW) == {
        "status": "pending",
        "next_attempt_at": NOW,
        "round_attempts": 0,
        "failure_reason": None,
        "updated_at": NOW,
    }


candidates = st.lists(
    st.builds(DueDelivery, id=st.uuids().map(str), endpoint_id=st.sampled_from(["e1", "e2", "e3", "e4"])),
    max_size=40,
    unique_by=lambda d: d.id,
)
in_flight = st.dictionaries(st.sampled_from(["e1", "e2", "e3", "e4"]), st.integers(0, 4))


@given(candidates=candidates, busy=in_flight, per_endpoint=st.integers(1, 4), room=st.integers(0, 20))
def test_picking_never_exceeds_room_or_an_endpoints_slots(
    candidates: list[DueDelivery], busy: dict[str, int], per_endpoint: int, room: int
) -> None:
    chosen = pick_within_limits(candidates, busy, per_endpoint, room)
    by_id = {c.id: c for c in candidates}
    per = Counter(by_id[i].endpoint_id for i in chosen)
    assert len(chosen) <= room and len(set(chosen)) == len(chosen)
    assert all(busy.get(e, 0) + n <= per_endpoint for e, n in per.items())
    # Oldest first: a skipped candidate's endpoint was full, or the room was.
    order = [c.id for c in candidates if c.id in set(chosen)]
    assert chosen == order
    if len(chosen) < room:
        for c in candidates:
            if c.id not in chosen:
                assert busy.get(c.endpoint_id, 0) + per[c.endpoint_id] >= per_endpoint


def test_local_slots_hold_a_slow_endpoint_to_its_own_slots() -> None:
    slots = LocalSlots(per_endpoint=2, total=3)
    due = [DueDelivery(f"d{i}", "slow") for i in range(3)] + [DueDelivery("d9", "fast")]
    chosen = slots.pick(due, slots.room())
    assert chosen == ["d0", "d1", "d9"]
    for delivery_id in chosen:
        slots.take(next(d.endpoint_id for d in due if d.id == delivery_id))
    assert slots.room() == 0 and slots.saturated() == ["slow"]
    slots.release("fast")
    assert slots.room() == 1 and slots.pick(due, 1) == ["d9"]
    slots.release("slow")
    assert slots.saturated() == []


@given(rate=st.floats(0.01, 1000), steps=st.lists(st.floats(0, 5), min_size=1, max_size=30))
def test_pace_spaces_sends_by_the_rate(rate: float, steps: list[float]) -> None:
    next_free: datetime | None = None
    now = NOW
    sent: list[datetime] = []
    for step in steps:
        now += timedelta(seconds=step)
        decision = pace(next_free, now, rate)
        if decision.send_now:
            sent.append(now)
            next_free = decision.next_free
            assert next_free == now + timedelta(seconds=1 / rate)
        else:
            assert next_free is not None and decision.next_free == next_free > now
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(sent)]
    assert all(gap >= 1 / rate - 1e-6 for gap in gaps)


async def test_the_local_rate_gate_postpones_until_the_next_slot() -> None:
    gate = LocalRateGate()
    assert await gate.admit("e1", 2, NOW) is None
    assert await gate.admit("e1", 2, NOW + timedelta(seconds=0.1)) == NOW + timedelta(seconds=0.5)
    assert await gate.admit("e2", 2, NOW) is None  # per endpoint
    assert await gate.admit("e1", 2, NOW + timedelta(seconds=0.5)) is None
