"""Several replicas of one service side by side: background jobs run under a lease, one replica per run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from ksbb_kit.jobs import LEASE_COLLECTION
from ksbb_kit.runtime import ServiceRuntime
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


class ReplicaSettings(KitSettings):
    """Settings of the service whose replicas the tests start."""

    service_name: ClassVar[str] = "pledges"


class RunLog:
    """What each replica's job did: who ran, and how many runs were in progress at once."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.running = 0
        self.most_at_once = 0


def replica(settings: ReplicaSettings, log: RunLog) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, title="replica", description="a replica of the service")
    runtime.job_lease_seconds = 3.0

    @runtime.every(0.2, "replica-sweep")
    async def sweep(rt: ServiceRuntime) -> None:
        log.running += 1
        log.most_at_once = max(log.most_at_once, log.running)
        try:
            await asyncio.sleep(0.05)
            log.runs.append(rt.holder_id)
        finally:
            log.running -= 1

    return runtime


async def test_one_replica_runs_each_job_run_and_another_takes_over_when_it_stops(kit_env: dict[str, Any]) -> None:
    settings = ReplicaSettings(**kit_env)
    log = RunLog()
    first, second = replica(settings, log), replica(settings, log)
    await first.start()
    await second.start()
    try:
        await eventually(lambda: len(log.runs) >= 10, within=60, what="ten runs of the job")
        holders = set(log.runs)
        assert len(holders) == 1, f"runs were split between replicas: {holders}"
        assert log.most_at_once == 1
        (holder,) = holders
        leaving, staying = (first, second) if holder == first.holder_id else (second, first)
        await leaving.stop()
        before = len(log.runs)
        await eventually(lambda: log.runs[before:].count(staying.holder_id) >= 5, within=30,
                         what="the other replica taking the job over")
        assert set(log.runs[before:]) == {staying.holder_id}
        assert log.most_at_once == 1
    finally:
        await first.stop()
        await second.stop()


async def test_a_replica_takes_a_job_over_once_a_dead_holders_lease_expires(kit_env: dict[str, Any]) -> None:
    settings = ReplicaSettings(**kit_env)
    log = RunLog()
    runtime = replica(settings, log)
    # A replica that died holding the lease: it never renews nor releases it.
    expires = datetime.now(UTC) + timedelta(seconds=2)
    await runtime.db[LEASE_COLLECTION].insert_one(
        {"_id": "replica-sweep", "holder": "dead-replica", "expires_at": expires})
    await runtime.start()
    try:
        await eventually(lambda: len(log.runs) >= 3, within=30, what="runs after the dead holder's lease expired")
        assert datetime.now(UTC) >= expires
        lease = await runtime.db[LEASE_COLLECTION].find_one({"_id": "replica-sweep"})
        assert lease is not None and lease["holder"] == runtime.holder_id
    finally:
        await runtime.stop()
