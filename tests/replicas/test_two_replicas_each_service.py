"""Two replicas of each service side by side: two processes on the same database, topics and consumer group.

For each service, read from the two processes' own /metrics (as Prometheus scrapes two pods) and database:
- each leased background job is held by exactly one replica, and only that replica ran it (the sweeps run
  every second here, so the other replica would have run them too without the lease); a per-replica job
  (the publisher's feed poll) runs in both;
- consumer lag is reported for each partition of the group's topics by exactly one replica, so summing
  `ksbb_consumer_lag_records` over pods counts every partition once;
- notifier: the per-endpoint concurrency limit holds across both processes (one request at a time reaches a
  receiver limited to 1, with deliveries queued through both replicas);
- publisher: the day's open-data snapshot is taken once, and not again while both keep running the job.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from ksbb_contracts.topics import topics_consumed_by
from ksbb_kit.auth import DevIssuer
from ksbb_kit.kafka import topic_partitions
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.waiting import eventually
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from tests.deploy.conftest import ContainerProcess, free_ports, process_environment

pytestmark = pytest.mark.integration

SERVICES = ("registry", "pledges", "notifier", "publisher")
#: Jobs that run for as long as their replica holds the lease: held by one, but a run never "succeeds".
ENDLESS_JOBS = {"webhook-dispatcher", "email-sender"}
#: Jobs every replica runs for itself (no lease).
PER_REPLICA_JOBS = {"feed-poll"}


def samples(page: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Labels and value of every sample called `name` on a /metrics page."""
    return [(s.labels, s.value) for f in text_string_to_metric_families(page) for s in f.samples if s.name == name]


def by_job(page: str, name: str, **match: str) -> dict[str, float]:
    """A per-job metric of one replica, keyed by job name."""
    return {labels["job"]: value for labels, value in samples(page, name)
            if all(labels.get(k) == v for k, v in match.items())}


class CountingReceiver:
    """A webhook receiver holding each request a moment, counting how many were in progress at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_progress = 0
        self.most_at_once = 0
        self.received = 0


@pytest.fixture
def counting_receiver() -> Iterator[tuple[CountingReceiver, str]]:
    state = CountingReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with state.lock:
                state.in_progress += 1
                state.most_at_once = max(state.most_at_once, state.in_progress)
            threading.Event().wait(0.3)  # long enough for a second sender, were there one, to overlap
            with state.lock:
                state.in_progress -= 1
                state.received += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}/hook"
    finally:
        server.shutdown()


@pytest.fixture
def replicas() -> Iterator[list[ContainerProcess]]:
    """The processes a test starts; all stopped afterwards."""
    started: list[ContainerProcess] = []
    yield started
    for proc in started:
        proc.stop()


def _environment(service: str, infra: Infra, namespace: str, issuer: DevIssuer, port: int) -> dict[str, str]:
    env = process_environment(service, infra, namespace, issuer, port)
    if service == "notifier":
        env |= {"KSBB_NOTIFIER_PER_ENDPOINT_CONCURRENCY": "1", "KSBB_NOTIFIER_DISPATCH_SWEEP_SECONDS": "0.2"}
    if service == "publisher":
        env |= {"KSBB_PUBLISHER_SNAPSHOT_INTERVAL_SECONDS": "1"}
    return env


async def _all_partitions(bootstrap: str, topics: list[str]) -> set[tuple[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await topic_partitions(admin, topics)
    finally:
        await admin.close()
    return {(tp.topic, str(tp.partition)) for tps in found.values() for tp in tps}


@pytest.mark.parametrize("service", SERVICES)
async def test_two_replicas_share_jobs_lag_and_limits(
    service: str, infra: Infra, namespace: str, dev_issuer: DevIssuer, tmp_path: Path,
    replicas: list[ContainerProcess], counting_receiver: tuple[CountingReceiver, str],
) -> None:
    ports = free_ports(2)
    for index, port in enumerate(ports):
        proc = ContainerProcess(f"{service}-{index}", [f"ksbb-{service}"],
                                _environment(service, infra, namespace, dev_issuer, port), tmp_path / str(index))
        replicas.append(proc.start())
    for proc, port in zip(replicas, ports, strict=True):
        await asyncio.to_thread(proc.wait_http, port, "/readyz", 180)
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    topics = [namespace + t.name for t in topics_consumed_by(service)]
    partitions = await _all_partitions(infra.kafka_bootstrap, topics)
    assert len(partitions) == 2 * len(topics), "two partitions per consumed topic"

    async with httpx.AsyncClient(timeout=30) as client:
        async def pages() -> list[str]:
            return [(await client.get(f"{base}/metrics")).text for base in bases]

        async def settled() -> list[str] | None:
            current = await pages()
            held = [by_job(page, "ksbb_job_lease_held") for page in current]
            leased = set().union(*held)
            ran = [by_job(page, "ksbb_job_runs_total", outcome="success") for page in current]
            periodic = leased - ENDLESS_JOBS
            lag = [{(labels["topic"], labels["partition"]) for labels, _ in samples(page, "ksbb_consumer_lag_records")}
                   for page in current]
            ready = (leased and all(sum(h.get(job, 0) for h in held) == 1 for job in leased)
                     and all(max(r.get(job, 0) for r in ran) >= 1 for job in periodic)
                     # every service sweeps idempotency keys every second here: several chances to run twice
                     and max(r.get("idempotency-sweep", 0) for r in ran) >= 3
                     and lag[0] | lag[1] == partitions and all(lag))
            seen.update(held=held, ran=ran, unreported=partitions - (lag[0] | lag[1]))
            return current if ready else None

        seen: dict[str, Any] = {}
        try:
            current = await eventually(settled, within=120, interval=1,
                                       what=f"{service}: every job leased once, run, and every partition reported")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen: {seen}") from None
        held = [by_job(page, "ksbb_job_lease_held") for page in current]
        ran = [by_job(page, "ksbb_job_runs_total", outcome="success") for page in current]
        for job in set().union(*held):
            holder = 0 if held[0].get(job) == 1 else 1
            assert held[holder][job] == 1 and held[1 - holder].get(job, 0) == 0, job
            if job not in ENDLESS_JOBS:
                assert ran[1 - holder].get(job, 0) == 0, f"{job} also ran in the replica without its lease"
        for job in PER_REPLICA_JOBS & (set(ran[0]) | set(ran[1])):
            assert ran[0].get(job, 0) >= 1 and ran[1].get(job, 0) >= 1, f"{job} runs in every replica"
        # each partition is reported by exactly one replica: the sum over pods counts it once
        reported: dict[tuple[str, str], int] = defaultdict(int)
        for page in current:
            for labels, _ in samples(page, "ksbb_consumer_lag_records"):
                reported[(labels["topic"], labels["partition"])] += 1
        assert set(reported) == partitions and set(reported.values()) == {1}, dict(reported)

        if service == "notifier":
            receiver, url = counting_receiver
            admin = {"authorization": f"Bearer {dev_issuer.token('admin')}"}
            created = await client.post(f"{bases[0]}/v1/webhooks/endpoints", json={"url": url}, headers=admin)
            assert created.status_code == 201, created.text
            for base in bases * 3:
                queued = await client.post(f"{base}/v1/webhooks/endpoints/{created.json()['id']}/test", headers=admin)
                assert queued.status_code == 202, queued.text
            await eventually(lambda: receiver.received == 6, within=60, what="six deliveries received")
            assert receiver.most_at_once == 1, "the per-endpoint limit of 1 held across both replicas"

        if service == "publisher":
            mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
            try:
                snapshots = mongo[namespace.replace(".", "_") + "ksbb_publisher"].snapshots

                async def taken() -> list[dict[str, Any]] | None:
                    found = await snapshots.find({}).to_list(None)
                    return found or None

                first = await eventually(taken, within=60, what="today's snapshot taken")
                assert len(first) == 1, first
                runs_before = sum(by_job(page, "ksbb_job_runs_total", outcome="success").get("open-data-snapshot", 0)
                                  for page in await pages())

                async def ran_again() -> bool:
                    runs = sum(by_job(page, "ksbb_job_runs_total", outcome="success").get("open-data-snapshot", 0)
                               for page in await pages())
                    return runs >= runs_before + 3

                await eventually(ran_again, within=60, what="the snapshot job ran three more times")
                after = await snapshots.find({}).to_list(None)
                assert [(s["_id"], s["taken_at"]) for s in after] == [(s["_id"], s["taken_at"]) for s in first]
            finally:
                await mongo.close()
