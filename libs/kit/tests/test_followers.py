"""A topic follower (pure, on a fake clock): it waits until a batch is old enough, waits out a database
outage without blaming any item, and marks an item that keeps failing stuck instead of stopping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from ksbb_contracts import CloudEvent, Event
from ksbb_contracts.events import DonorProfileUpdated, OfferCreated
from ksbb_kit.clock import ManualClock
from ksbb_kit.followers import MAX_ATTEMPTS, FollowedRecord, Follower
from ksbb_kit.outbox import envelope_for
from pymongo.errors import AutoReconnect

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class FakeTime:
    """A wall clock that only moves when the follower sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Stuck:
    """Collects stuck markers."""

    def __init__(self) -> None:
        self.marked: list[tuple[str, str]] = []

    async def mark(self, job: str, item_id: str, error: str) -> None:
        self.marked.append((job, item_id))


def record(donor_id: str, stamped: float) -> FollowedRecord:
    event = DonorProfileUpdated(donor_id=donor_id, kind="person", version=1, occurred_at=NOW)
    envelope = envelope_for(event, source="/ksbb/test", clock=ManualClock(NOW))
    return FollowedRecord(envelope.to_bytes(), int(stamped * 1000))


def follower(clock: FakeTime, handle: Any, stuck: Stuck | None = None) -> Follower:
    return Follower("test-follow", [DonorProfileUpdated], handle, delay_seconds=30, stuck=stuck,
                    item_id=lambda event: str(event.subject), wall_clock=clock.time, sleep=clock.sleep)


async def test_a_batch_is_handled_once_its_newest_record_is_old_enough_and_others_are_passed_over() -> None:
    clock = FakeTime(1_000.0)
    seen: list[tuple[float, list[str]]] = []

    async def handle(events: Sequence[tuple[Event, CloudEvent]]) -> dict[str, BaseException]:
        seen.append((clock.now, [e.subject for e, _ in events]))
        return {}

    offer = OfferCreated(offer_id="off_1", donor_id="dnr_9", item="sembako", quantity=1,
                         available_until=NOW.date(), occurred_at=NOW)
    other = FollowedRecord(envelope_for(offer, source="/t", clock=ManualClock(NOW)).to_bytes(), 995_000)
    handled = await follower(clock, handle).follow(
        [record("dnr_1", 990.0), other, FollowedRecord(b"not json", 996_000), record("dnr_2", 995.0)]
    )
    assert handled == 2
    assert seen == [(1_026.0, ["dnr_1", "dnr_2"])]  # 30 s after the newest record (996 s), not before


async def test_an_outage_is_waited_out_and_an_item_that_keeps_failing_is_marked_stuck_and_skipped() -> None:
    clock = FakeTime(2_000.0)
    stuck = Stuck()
    calls: list[list[str]] = []

    async def handle(events: Sequence[tuple[Event, CloudEvent]]) -> dict[str, BaseException]:
        calls.append([e.subject for e, _ in events])
        if len(calls) <= 5:
            raise AutoReconnect("the database is down")
        return {"dnr_bad": ValueError("poisoned")} if "dnr_bad" in calls[-1] else {}

    await follower(clock, handle, stuck).follow([record("dnr_ok", 1.0), record("dnr_bad", 1.0)])
    # Five attempts during the outage cost nothing; then the bad item alone is retried, and given up on.
    assert calls[:6] == [["dnr_ok", "dnr_bad"]] * 6
    assert calls[6:] == [["dnr_bad"]] * (MAX_ATTEMPTS - 1)
    assert stuck.marked == [("test-follow", "dnr_bad")]


async def test_a_batch_whose_handler_keeps_raising_is_marked_stuck_item_by_item_and_the_follower_goes_on() -> None:
    clock = FakeTime(3_000.0)
    stuck = Stuck()
    calls = 0

    async def handle(events: Sequence[tuple[Event, CloudEvent]]) -> dict[str, BaseException]:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug, not an outage")

    assert await follower(clock, handle, stuck).follow([record("dnr_a", 1.0), record("dnr_b", 1.0)]) == 2
    assert calls == MAX_ATTEMPTS
    assert stuck.marked == [("test-follow", "dnr_a"), ("test-follow", "dnr_b")]
