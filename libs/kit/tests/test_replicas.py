"""Several replicas of one service side by side: jobs run under a lease, lag is reported per assigned partition."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from ksbb_contracts import CloudEvent
from ksbb_contracts.events import NeedOpened
from ksbb_contracts.topics import NEEDS
from ksbb_kit.consumer import EventRouter
from ksbb_kit.jobs import LEASE_COLLECTION
from ksbb_kit.kafka import KafkaRecordPublisher, consumer_lag
from ksbb_kit.metrics import CONSUMER_LAG
from ksbb_kit.runtime import ServiceRuntime
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.factories import consumed_record, make_event
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


async def test_a_per_replica_job_runs_in_every_replica(kit_env: dict[str, Any]) -> None:
    settings = ReplicaSettings(**kit_env)
    ran: list[str] = []

    def with_local_poll() -> ServiceRuntime:
        runtime = ServiceRuntime(settings, title="replica", description="a replica with a per-replica job")

        @runtime.every(0.1, "local-poll", per_replica=True)
        async def poll(rt: ServiceRuntime) -> None:
            ran.append(rt.holder_id)

        return runtime

    first, second = with_local_poll(), with_local_poll()
    await first.start()
    await second.start()
    try:
        await eventually(lambda: {first.holder_id, second.holder_id} <= set(ran), within=60,
                         what="the per-replica job running in both replicas")
        assert await first.db[LEASE_COLLECTION].find_one({"_id": "local-poll"}) is None
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


async def test_each_replica_reports_the_lag_of_its_assigned_partitions_and_the_sum_is_the_groups(
    kit_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ReplicaSettings(**kit_env)
    topic = settings.topic(NEEDS.name)
    release = asyncio.Event()
    first, second = consuming_replica(settings, release), consuming_replica(settings, release)
    await first.start()
    await second.start()
    publisher = KafkaRecordPublisher(settings.kafka_bootstrap, client_id="backlog")
    try:
        def assigned(runtime: ServiceRuntime) -> set[TopicPartition]:
            return {tp for consumer in runtime._consumers() for tp in consumer.assignment()}

        await eventually(lambda: len(assigned(first)) == 1 and len(assigned(second)) == 1, within=60,
                         what="one partition assigned to each replica")
        await publisher.start()
        for n in range(20):
            record = consumed_record(make_event(NeedOpened, need={"need_id": f"ned_{n}"}), prefix=settings.topic_prefix)
            await publisher.send(record.topic, record.key, record.value, record.headers)

        async def group_lag() -> int:
            return sum((await consumer_lag(settings.kafka_bootstrap, settings.consumer_group, [topic])).values())

        assert await eventually(lambda: _equals(group_lag, 20), what="the backlog in the group's lag")
        opened: list[str] = []
        for client in (AIOKafkaConsumer, AIOKafkaAdminClient):
            original = client.__init__

            def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> None:
                opened.append(type(self).__name__)
                _original(self, *args, **kwargs)

            monkeypatch.setattr(client, "__init__", counting)
        by_first, by_second = await first.assigned_lag.measure(), await second.assigned_lag.measure()
        assert opened == [], "measuring the lag opens no Kafka client"
        assert set(by_first) == assigned(first) and set(by_second) == assigned(second)
        assert not set(by_first) & set(by_second)
        assert sum(by_first.values()) + sum(by_second.values()) == 20
        series = {s.labels["partition"]: s.value for s in CONSUMER_LAG.collect()[0].samples
                  if s.labels["group"] == settings.consumer_group and s.labels["topic"] == topic}
        assert sorted(series) == ["0", "1"] and sum(series.values()) == 20
    finally:
        release.set()
        await publisher.stop()
        await first.stop()
        await second.stop()


async def _equals(measure: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await measure() == expected


def consuming_replica(settings: ReplicaSettings, release: asyncio.Event) -> ServiceRuntime:
    """A replica whose handler holds its first record until released: its partitions' backlog stays."""
    runtime = ServiceRuntime(settings, title="replica", description="a consuming replica")
    router = EventRouter("pledges")

    @router.on(NeedOpened)
    async def hold(event: NeedOpened, envelope: CloudEvent) -> None:
        await release.wait()

    runtime.subscribe(router)
    return runtime
