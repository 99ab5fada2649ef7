"""Jobs isolate items: an item that raises is recorded and skipped, the others are processed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ksbb_kit.jobs import JOB_ITEM_FAILURES, StuckItems, each_isolated, for_each_item, map_isolated
from pymongo import AsyncMongoClient


def divide(n: int) -> float:
    return 12 / n


def failures(job: str) -> float:
    return JOB_ITEM_FAILURES.labels(job=job)._value.get()


@pytest.mark.unit
def test_map_and_stream_leave_out_only_the_items_that_raise() -> None:
    before = failures("unit-map")
    assert map_isolated([1, 0, 3, 0, 4], divide, job="unit-map", item_id=str) == [12.0, 4.0, 3.0]
    assert failures("unit-map") == before + 2

    async def numbers() -> AsyncIterator[int]:
        for n in (2, 0, 6):
            yield n

    async def collect() -> list[float]:
        return [value async for value in each_isolated(numbers(), divide, job="unit-stream", item_id=str)]

    assert asyncio.run(collect()) == [6.0, 2.0]


@pytest.mark.unit
def test_for_each_item_goes_on_after_a_raising_item_but_stops_on_cancellation() -> None:
    async def work(n: int) -> float:
        if n < 0:
            raise asyncio.CancelledError
        return divide(n)

    run = asyncio.run(for_each_item([1, 0, 2], work, job="unit-each", item_id=lambda n: f"n{n}"))
    assert (run.results, run.failed, run.done) == ([12.0, 6.0], ["n0"], 2)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(for_each_item([1, -1, 2], work, job="unit-each", item_id=str))


@pytest.mark.integration
async def test_stuck_items_are_marked_counted_and_cleared_when_they_work_again(kit_env: dict[str, Any]) -> None:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(kit_env["mongodb_url"], tz_aware=True)
    try:
        stuck = StuckItems(mongo[kit_env["topic_prefix"].replace(".", "_") + "ksbb_jobs"])
        broken = {"b"}

        async def work(item: str) -> str:
            if item in broken:
                raise OverflowError("date value out of range")
            return item.upper()

        for _ in range(2):
            run = await for_each_item(["a", "b", "c"], work, job="sweep", item_id=str, stuck=stuck)
            assert run.results == ["A", "C"] and run.failed == ["b"]
        [marker] = await stuck.listing("sweep")
        assert (marker["item_id"], marker["failures"]) == ("b", 2)
        assert marker["error"] == "OverflowError: date value out of range"
        assert await stuck.listing("another job") == []
        broken.clear()
        assert (await for_each_item(["a", "b"], work, job="sweep", item_id=str, stuck=stuck)).failed == []
        assert await stuck.listing() == []
    finally:
        await mongo.close()
