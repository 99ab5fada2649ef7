"""The daily snapshot waits for the read models to catch up, and an operator can take a day's snapshot again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.infra import Infra
from ksbb_publisher.adapters.read_models import MongoReadModels
from ksbb_publisher.adapters.snapshot_files import MongoSnapshotFiles
from ksbb_publisher.app.exports import OpenData
from ksbb_publisher.app.snapshots import Snapshots
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.integration


async def test_snapshot_waits_for_catch_up_once_per_day_and_can_be_taken_again(infra: Infra, namespace: str) -> None:
    clock = ManualClock(datetime(2026, 3, 4, 23, 0, tzinfo=UTC))
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    db = mongo[namespace.replace(".", "_") + "ksbb_publisher"]
    files = MongoSnapshotFiles(db)
    snapshots = Snapshots(files, OpenData(MongoReadModels(db)), chunk_bytes=1024)
    asked: list[bool] = []

    def lag_says(answer: bool) -> Any:
        async def caught_up() -> bool:
            asked.append(answer)
            return answer
        return caught_up

    try:
        assert await snapshots.take_when_caught_up(clock.now(), lag_says(False)) is None
        assert await snapshots.list() == [], "no snapshot while the read models lag behind"
        taken = await snapshots.take_when_caught_up(clock.now(), lag_says(True))
        assert taken is not None and taken["_id"] == "2026-03-04"
        asked.clear()
        assert await snapshots.take_when_caught_up(clock.now(), lag_says(True)) is None
        assert asked == [], "a day's snapshot is taken once; the lag is not even asked again"

        clock.advance(timedelta(hours=2))  # the next day: the operator re-takes the 4th
        chunks_before = await db.snapshot_chunks.count_documents({"snapshot": "2026-03-04"})
        again = await snapshots.retake(clock.now().date() - timedelta(days=1), clock.now())
        assert again["_id"] == "2026-03-04" and again["taken_at"] == clock.now()
        listed = await snapshots.list()
        assert [s["_id"] for s in listed] == ["2026-03-04"]
        assert listed[0]["taken_at"].replace(tzinfo=UTC) == clock.now()
        assert await db.snapshot_chunks.count_documents({"snapshot": "2026-03-04"}) == chunks_before
    finally:
        await mongo.close()
