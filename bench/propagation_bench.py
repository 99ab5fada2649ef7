"""Propagation under load: how long a pledge takes from its 201 to the public live stream and to a webhook.

    uv run --no-sync python bench/propagation_bench.py [--rates 10,20,50,100,200] [--seconds 60]
    uv run --no-sync python bench/propagation_bench.py --tiny            # a smoke run (the test suite's)

Starts the four services as separate processes (their production entry points, on free ports, in a fresh
topic/database namespace; pledges go straight to the pledges service's port, not through the gateway),
seeds an organisation, `--needs` active recipients with one open need each through the registry's API, and
registers a webhook endpoint (an admin's, receiving every `ksbb.pledge.created` event) pointing at a local
receiver that checks every delivery's signature with the `standardwebhooks` package. A client keeps the
publisher's public live stream (`/v1/public/feed/stream`) open. The 50 donors record their profiles with an
e-mail address, and the notifier's mail goes to a local SMTP server that accepts every e-mail (as in a
deployment: without them every pledge's e-mails would fail and be retried, work a real stack does not do).

After a warm-up at the first rate (`--warm-up` seconds, not counted: the fresh infrastructure's JVMs start
cold), the pledge rate steps up through `--rates` (pledges per second, open loop, spread over the needs and
over 50 donors), `--seconds` each (a pledge whose turn comes after the step's time because the API fell behind
is not sent, and counted), draining between steps (until every pledge of the step arrived at both ends, at
most `--drain` seconds, or until nothing arrived for 5 s while no consumer has lag); it stops early once the
API answers less than half a step's rate. Per
pledge it records the time from the 201 to (a) its event on the live stream and (b) the verified webhook
delivery; per step p50/p99/max of both, next to the raw Kafka produce → consume round trip measured during
the same step (aiokafka, a scratch topic, ten a second). Where the time goes: a tap reads the pledge topic like
any consumer and splits each pledge's way into hops — 201 → the record's Kafka timestamp (the pledges service's
outbox relay), → a consumer has it (Kafka), → live stream (publisher), → webhook (notifier) — and the notifier's
own histograms give fan-out → receiver answered and the request alone (the notes, one line per step each).
Each step's line also gives the CPU share of every service, the database server and Kafka while it sent; the
first step that misses the goal adds a line with the sampled profile (py-spy, by package) of the service that
was busiest in its first seconds (sampled during every step until then, so the miss is caught without a repeat).

The knee is the highest rate up to which every step kept propagation p99 ≤ 150 ms at both ends with every
pledge arriving and the API keeping the rate (goal ≥ 100 pledges/s; below the knee p50 should stay ≤ 5× the
raw round trip). RSS (/proc/<pid>/status VmRSS) of each service idle, after seeding, and its peak during
the steps (goals ≤ 150 MiB idle, ≤ 300 MiB loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from common import (
    Processes,
    Results,
    Row,
    RssSampler,
    Series,
    bench_arguments,
    cpu_seconds,
    infra_env,
    infra_pid,
    metric_sum,
    percentile,
    ratio,
    rss_mib,
    sampled_profiles,
    service_env,
    smtp_sink,
    started_services,
    wait_ready,
)
from ksbb_contracts.areas import areas
from ksbb_contracts.topics import PLEDGES, Topic, all_topics_with_dlqs
from ksbb_kit.auth import DevIssuer
from ksbb_kit.kafka import ensure_topics
from standardwebhooks.webhooks import Webhook

P99_GOAL_MS = 150.0
KNEE_GOAL = 100.0
RTT_FACTOR = 5.0
RSS_IDLE_GOAL, RSS_LOADED_GOAL = 150.0, 300.0
DONORS = 50
#: A drain ends early once no pledge arrived anywhere for this long while no service's consumer has lag.
STALL_SECONDS = 5.0
#: How long a step sends before its busiest service is chosen for the sampled profile, and how long it is sampled.
PROFILE_AFTER, PROFILE_SECONDS = 3.0, 8.0
#: The scratch topic of the raw round trip (one partition: one consumer sees every sample).
#: Wall-clock seconds minus perf_counter seconds: puts the 201s and arrivals on the Kafka timestamps' clock.
WALL_OFFSET = time.time() - time.perf_counter()
#: The hops of a pledge's way, as the event tap splits it.
HOPS = ("201 → Kafka record timestamp (outbox relay)", "record timestamp → a consumer has it (Kafka)",
        "consumer has it → live stream (publisher)", "consumer has it → webhook (notifier)")
ROUND_TRIP = Topic("bench.round-trip", owner="bench", description="raw produce → consume samples", partitions=1,
                   retention_ms=3_600_000)


def pledge_id_in(value: Any) -> str | None:
    """The first `pledge_id` anywhere in a decoded JSON value."""
    if isinstance(value, dict):
        if isinstance(value.get("pledge_id"), str):
            return str(value["pledge_id"])
        for inner in value.values():
            found = pledge_id_in(inner)
            if found:
                return found
    if isinstance(value, list):
        for inner in value:
            found = pledge_id_in(inner)
            if found:
                return found
    return None


class Arrivals:
    """When each pledge arrived at one end (perf_counter seconds), first arrival only."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()
        self.rejected = 0
        #: Times the live stream was resumed with Last-Event-ID (the publisher ends it for a slow reader).
        self.resumed = 0

    def saw(self, pledge_id: str, when: float) -> None:
        """Record an arrival (a repeat keeps the first)."""
        with self.lock:
            self.at.setdefault(pledge_id, when)


def receiver_handler(secret_box: dict[str, str], arrivals: Arrivals) -> type[BaseHTTPRequestHandler]:
    """An NGO's webhook endpoint: verifies each delivery with `standardwebhooks`, records its pledge."""

    class Receiver(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint would offer

        def do_POST(self) -> None:
            arrived = time.perf_counter()
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                payload = Webhook(secret_box["secret"]).verify(body, {k.lower(): v for k, v in self.headers.items()})
            except Exception:  # a bad signature is counted and refused, as an NGO would refuse it
                arrivals.rejected += 1
                self.send_response(401)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            pledge_id = pledge_id_in(payload)
            if pledge_id:
                arrivals.saw(pledge_id, arrived)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            """Quiet."""

    return Receiver


@contextlib.contextmanager
def webhook_receiver(secret_box: dict[str, str], arrivals: Arrivals) -> Iterator[str]:
    """A local webhook receiver in a thread; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver_handler(secret_box, arrivals))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ksbb-webhooks"
    finally:
        server.shutdown()


async def live_stream(url: str, arrivals: Arrivals, opened: asyncio.Event) -> None:
    """Follow the public live stream as a browser's EventSource does; record when each pledge's entry arrives.

    The publisher ends the stream of a client too slow to keep up (this process, when CPU-starved at high
    rates); like EventSource, it then resumes with Last-Event-ID, so entries come late but are not lost.
    """
    timeout = httpx.Timeout(10, read=None)
    last_id: str | None = None
    async with httpx.AsyncClient(timeout=timeout) as client:
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with client.stream("GET", url, headers=headers) as response:
                    if response.status_code != 200:
                        raise RuntimeError(f"the live stream answered {response.status_code}")
                    opened.set()
                    async for line in response.aiter_lines():
                        if line.startswith("id:"):
                            last_id = line[3:].strip() or last_id
                        elif line.startswith("data:") and "pledge_id" in line:
                            arrived = time.perf_counter()
                            with contextlib.suppress(ValueError):
                                pledge_id = pledge_id_in(json.loads(line[5:].strip()))
                                if pledge_id:
                                    arrivals.saw(pledge_id, arrived)
            except httpx.TransportError:
                pass  # the connection broke: resume like an end of stream
            arrivals.resumed += 1
            await asyncio.sleep(0.1)


class EventTap:
    """Reads the pledge topic like any consumer: each pledge's Kafka record timestamp (set by the pledges
    service's producer when its outbox relay sent the event) and when the record reached a consumer."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        #: pledge id -> (record timestamp, received), wall-clock seconds; first record only
        self.seen: dict[str, tuple[float, float]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect at the topic's end and start reading."""
        self.consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, auto_offset_reset="latest",
                                         fetch_max_wait_ms=5, group_id=None)
        await self.consumer.start()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.consumer:
            received = time.time()
            with contextlib.suppress(ValueError, AttributeError):
                pledge_id = pledge_id_in(json.loads(message.value or b"{}"))
                if pledge_id:
                    self.seen.setdefault(pledge_id, (message.timestamp / 1000, received))

    async def stop(self) -> None:
        """Stop reading and disconnect."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()


class RoundTrip:
    """The raw Kafka produce → consume round trip on a scratch topic, sampled in the background."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.samples: list[float] = []
        self._sent: dict[bytes, float] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Connect a producer and a consumer (at the topic's end) and start sampling."""
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=0, acks="all")
        await self.producer.start()
        await self.producer.send_and_wait(self.topic, b"warm-up")
        self.consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, auto_offset_reset="latest",
                                         fetch_max_wait_ms=5, group_id=None)
        await self.consumer.start()
        await asyncio.sleep(1)
        self._tasks = [asyncio.create_task(self._consume()), asyncio.create_task(self._produce())]

    async def _consume(self) -> None:
        async for message in self.consumer:
            sent = self._sent.pop(message.value or b"", None)
            if sent is not None:
                self.samples.append(time.perf_counter() - sent)

    async def _produce(self) -> None:
        while True:
            key = uuid.uuid4().bytes
            self._sent[key] = time.perf_counter()
            await self.producer.send(self.topic, key)
            await asyncio.sleep(0.1)

    def take(self) -> list[float]:
        """The samples since the last call (seconds)."""
        taken, self.samples = self.samples, []
        return taken

    async def stop(self) -> None:
        """Stop sampling and disconnect."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.consumer.stop()
        await self.producer.stop()


@dataclass
class Step:
    """One rate step: what was sent and how long it took to arrive."""

    rate: float
    answered: dict[str, float] = field(default_factory=dict)  # pledge id → perf_counter of its 201
    api: list[float] = field(default_factory=list)
    failed: int = 0
    seconds: float = 0.0
    stream: list[float] = field(default_factory=list)
    webhook: list[float] = field(default_factory=list)
    stream_missing: int = 0
    webhook_missing: int = 0
    round_trip: list[float] = field(default_factory=list)
    drained_after: float = 0.0
    hops: dict[str, list[float]] = field(default_factory=lambda: {hop: [] for hop in HOPS})
    #: Pledges never sent: their turn came after the step's time was up (the API had fallen behind).
    unsent: int = 0
    #: Percent of one core each process used while the step sent its pledges.
    cpu: dict[str, float] = field(default_factory=dict)
    #: The busiest service's sampled profile during the step: (service, summary), when it was sampled.
    profile: tuple[str, str] | None = None

    @property
    def achieved(self) -> float:
        """Pledges answered 201 per second of the step."""
        return len(self.answered) / self.seconds if self.seconds else 0.0

    def within_goal(self) -> bool:
        """Both ends ≤ 150 ms at p99, nothing lost on the way, the API kept (95 % of) the rate."""
        return (
            bool(self.answered) and not self.stream_missing and not self.webhook_missing
            and percentile(self.stream, 0.99) * 1000 <= P99_GOAL_MS
            and percentile(self.webhook, 0.99) * 1000 <= P99_GOAL_MS
            and self.achieved >= 0.95 * self.rate
        )


async def seed(api: dict[str, str], issuer: DevIssuer, needs_wanted: int) -> list[str]:
    """An organisation, active recipients with one open need each, through the registry's API; need ids."""
    admin = {"authorization": f"Bearer {issuer.token('admin', subject='bench-admin', ttl_seconds=7200)}"}
    async with httpx.AsyncClient(base_url=api["registry"], timeout=60, headers=admin) as client:
        made = await client.post("/v1/organisations", json={
            "name": "Yayasan Propagasi", "kind": "ngo", "area_codes": ["31.71", "31.72"],
            "contact": {"email": "propagasi@yayasan.example"}})
        if made.status_code != 201:
            raise SystemExit(f"seeding the organisation failed: {made.status_code} {made.text}")
        org = made.json()["organisation_id"]
    kelurahan = [a.code for a in areas().level("kelurahan") if a.code.startswith(("31.71.", "31.72."))]
    token = issuer.token("facilitator", subject="bench-staff", org_id=org, ttl_seconds=7200)
    needs: list[str] = []
    async with httpx.AsyncClient(base_url=api["registry"], timeout=60,
                                 headers={"authorization": f"Bearer {token}"}) as staff:

        async def one(index: int) -> None:
            code = kelurahan[index % len(kelurahan)]
            made = await staff.post("/v1/recipients", json={
                "name": f"RW {index % 90 + 1:02d} {areas().kelurahan(code).name}", "kind": "rw_rentan",
                "organisation_id": org, "kelurahan_code": code, "rw": index % 90 + 1,
                "street_address": f"Jl. Propagasi No. {index}", "beneficiaries": {"households": 120, "people": 480},
                "contact": {"name": "Ibu Sari", "phone": "081234567890"}})
            if made.status_code != 201:
                raise SystemExit(f"seeding a recipient failed: {made.status_code} {made.text}")
            recipient = made.json()["recipient_id"]
            for step in ("verify", "activate"):
                (await staff.post(f"/v1/recipients/{recipient}/{step}", json={"reason": "bench"})).raise_for_status()
            need = await staff.post(f"/v1/recipients/{recipient}/needs", json={
                "item": "sembako", "quantity": 100_000, "priority": "high",
                "needed_by": (date.today() + timedelta(days=20)).isoformat()})
            if need.status_code != 201:
                raise SystemExit(f"seeding a need failed: {need.status_code} {need.text}")
            needs.append(need.json()["need_id"])

        for start in range(0, needs_wanted, 20):
            await asyncio.gather(*(one(i) for i in range(start, min(start + 20, needs_wanted))))
    return needs


def pledge_body(need_id: str) -> dict[str, Any]:
    """A one-unit pledge, delivered by the donor in two days."""
    return {"need_id": need_id, "quantity": 1, "planned_date": (date.today() + timedelta(days=2)).isoformat()}


async def record_donor_contacts(pledges_api: str, donors: list[dict[str, str]]) -> None:
    """Each donor's profile with an e-mail address, as the portal records it (the notifier e-mails donors)."""
    async with httpx.AsyncClient(base_url=pledges_api, timeout=60) as client:
        for n, headers in enumerate(donors):
            profile = {"kind": "person", "display_name": f"Kolaborator {n}", "show_name": False,
                       "contact": {"name": f"Kolaborator {n}", "email": f"kolaborator{n}@bench.example"}}
            answer = await client.put("/v1/donors/me", json=profile, headers=headers)
            if answer.status_code != 200:
                raise SystemExit(f"recording donor {n}'s contact failed: {answer.status_code} {answer.text}")


async def first_pledges(client: httpx.AsyncClient, needs: list[str], headers: list[dict[str, str]]) -> list[str]:
    """One pledge per need, retried until the ledger knows the need and its active recipient; their ids."""
    made: list[str] = []

    async def one(index: int, need_id: str) -> None:
        deadline = time.monotonic() + 180
        while True:
            answer = await client.post("/v1/pledges", json=pledge_body(need_id), headers=headers[index % len(headers)])
            if answer.status_code == 201:
                made.append(answer.json()["pledge_id"])
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"no pledge on {need_id} within 180 s: {answer.status_code} {answer.text}")
            await asyncio.sleep(0.5)

    await asyncio.gather(*(one(i, n) for i, n in enumerate(needs)))
    return made


async def wait_arrived(pledges: list[str], ends: list[Arrivals], within: float,
                       processes: Processes | None = None) -> float:
    """Until every pledge arrived at every end, at most `within` seconds, or (given the services) until nothing
    arrived for `STALL_SECONDS` while no consumer has lag: what is still missing then is not on its way. The
    seconds waited."""
    started = last_progress = time.monotonic()
    wanted, arrived_before = len(pledges) * len(ends), -1
    while time.monotonic() - started < within:
        arrived = sum(p in end.at for end in ends for p in pledges)
        if arrived == wanted:
            break
        if arrived != arrived_before:
            arrived_before, last_progress = arrived, time.monotonic()
        elif processes and time.monotonic() - last_progress >= STALL_SECONDS and not await lag(processes):
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def run_step(client: httpx.AsyncClient, step: Step, seconds: float, needs: list[str],
                   headers: list[dict[str, str]], in_flight: int) -> None:
    """Send pledges at the step's rate (open loop: each at its planned moment, at most `in_flight` waiting)."""
    total = max(1, round(step.rate * seconds))
    gate = asyncio.Semaphore(in_flight)

    async def one(index: int) -> None:
        async with gate:
            if time.perf_counter() > started + seconds + 1:
                # Its turn came after the step's time: the API is behind, and sending it would only lengthen
                # the step (the answered rate already says so).
                step.unsent += 1
                return
            began = time.perf_counter()
            try:
                answer = await client.post("/v1/pledges", json=pledge_body(needs[index % len(needs)]),
                                           headers=headers[index % len(headers)])
            except httpx.HTTPError:
                step.failed += 1
                return
            answered = time.perf_counter()
            step.api.append(answered - began)
            if answer.status_code == 201:
                step.answered[answer.json()["pledge_id"]] = answered
            else:
                step.failed += 1

    started = time.perf_counter()
    tasks = []
    for index in range(total):
        delay = started + index / step.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    step.seconds = max(time.perf_counter() - started, total / step.rate)


def cpu_now(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds each process has used so far (a process that is gone counts nothing)."""
    used = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            used[name] = cpu_seconds(pid)
    return used


def cpu_shares(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Percent of one core each process used between two readings."""
    return {name: round(100 * (after[name] - before[name]) / seconds, 1)
            for name in before if name in after and seconds > 0}


async def profile_busiest(services: dict[str, int], seconds: float) -> tuple[str, str] | None:
    """After `PROFILE_AFTER` seconds of the step, a sampled profile of the service that used the most CPU so far
    (for up to `PROFILE_SECONDS`, within the step): (service, summary)."""
    before, began = cpu_now(services), time.monotonic()
    wait = min(PROFILE_AFTER, seconds / 4)
    await asyncio.sleep(wait)
    shares = cpu_shares(before, cpu_now(services), time.monotonic() - began)
    if not shares:
        return None
    busiest = max(shares, key=lambda name: shares[name])
    sampled = await sampled_profiles({busiest: services[busiest]}, max(1.0, min(PROFILE_SECONDS, seconds - wait - 1)))
    return busiest, sampled[busiest]


def profile_line(step: Step) -> str:
    """The first step that missed the goal: each process's CPU share while it sent, and the busiest service's
    sampled profile."""
    cpu = ", ".join(f"{name} {share:.0f} %" for name, share in sorted(step.cpu.items(), key=lambda kv: -kv[1]))
    line = (f"profile of the first step that missed the goal ({step.rate:g} pledges/s): CPU while it sent (% of "
            f"one core, 2 cores in all): {cpu}")
    if step.profile:
        line += f"; sampled profile of the busiest service, {step.profile[0]}: {step.profile[1]}"
    return line


def settle(step: Step, stream: Arrivals, webhook: Arrivals, tap: EventTap) -> None:
    """Latencies of the step's pledges at both ends and per hop, and how many never arrived."""
    for pledge_id, answered in step.answered.items():
        seen = tap.seen.get(pledge_id)
        if seen is not None:
            stamped, received = seen
            step.hops[HOPS[0]].append(stamped - (answered + WALL_OFFSET))
            step.hops[HOPS[1]].append(received - stamped)
            for hop, end in ((HOPS[2], stream), (HOPS[3], webhook)):
                if pledge_id in end.at:
                    step.hops[hop].append(end.at[pledge_id] + WALL_OFFSET - received)
        for end, sink in ((stream, step.stream), (webhook, step.webhook)):
            arrived = end.at.get(pledge_id)
            if arrived is not None:
                sink.append(max(0.0, arrived - answered))
        step.stream_missing += pledge_id not in stream.at
        step.webhook_missing += pledge_id not in webhook.at


def hop_line(step: Step) -> str:
    """Where a step's time went: p50/p99 per hop (ms), and the machine's load while it ran."""
    hops = "; ".join(f"{hop} p50 {ms(values, 0.5):.1f} / p99 {ms(values, 0.99):.1f}"
                     for hop, values in step.hops.items())
    cpu = ", ".join(f"{name} {share:.0f}" for name, share in step.cpu.items())
    return (f"{step.rate:g} pledges/s, per hop (ms): {hops}; CPU while sending (% of a core): {cpu}; "
            f"load average {os.getloadavg()[0]:.1f}")


def ms(values: list[float], q: float) -> float:
    """A percentile of seconds, in milliseconds (rounded)."""
    return round(percentile(values, q) * 1000, 2)


NOTIFIER_TIMINGS = ("ksbb_webhook_delivery_latency_seconds", "ksbb_webhook_attempt_seconds")


async def notifier_timings(url: str) -> dict[str, float]:
    """The notifier's own sums and counts: fan-out → answered per delivery, and the request alone."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{url}/metrics")).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.removesuffix("_sum").removesuffix("_count") in NOTIFIER_TIMINGS and name.endswith(("_sum", "_count")):
            found[name] = float(value)
    return found


def notifier_line(before: dict[str, float], after: dict[str, float]) -> str:
    """Mean milliseconds of the notifier's own timings between two readings."""
    means = []
    for name, what in zip(NOTIFIER_TIMINGS, ("fan-out → receiver answered", "the request alone"), strict=True):
        count = after.get(f"{name}_count", 0.0) - before.get(f"{name}_count", 0.0)
        total = after.get(f"{name}_sum", 0.0) - before.get(f"{name}_sum", 0.0)
        means.append(f"{what} mean {1000 * total / count:.1f}" if count else f"{what}: none")
    return "notifier's own timings (ms): " + "; ".join(means)


async def lag(processes: Processes) -> float:
    """Records the services' consumers have not yet committed (their /metrics)."""
    async with httpx.AsyncClient(timeout=10) as client:
        total = 0.0
        for _, url in processes.values():
            with contextlib.suppress(httpx.HTTPError):
                total += metric_sum((await client.get(f"{url}/metrics")).text, "ksbb_consumer_lag_records")
        return total


async def main() -> None:
    """Start the stack, step the rate, report."""
    parser = bench_arguments(__doc__)
    parser.add_argument("--rates", default="10,20,50,100,200", help="pledges per second, one step each")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each step")
    parser.add_argument("--needs", type=int, default=100, help="open needs the pledges are spread over")
    parser.add_argument("--drain", type=float, default=120.0, help="longest wait for a step's pledges to arrive")
    parser.add_argument("--in-flight", type=int, default=512, help="most pledges waiting for their answer at once")
    parser.add_argument("--warm-up", type=float, default=30.0,
                        help="seconds at the first rate before the steps, not counted (the JVMs start cold)")
    args = parser.parse_args()
    if args.tiny:
        args.rates, args.seconds, args.needs, args.drain, args.warm_up = "5,10", 2.0, 3, 60.0, 1.0
    rates = sorted(float(r) for r in args.rates.split(","))
    results = Results("propagation")
    base = infra_env()
    prefix = f"prop{uuid.uuid4().hex[:6]}."
    logs = Path(tempfile.mkdtemp(prefix="ksbb-propagation-logs-"))
    print(f"service logs in {logs}", flush=True)
    stream_arrivals, webhook_arrivals = Arrivals(), Arrivals()
    secret_box: dict[str, str] = {}
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="ksbb-propagation-") as tmp, \
            webhook_receiver(secret_box, webhook_arrivals) as receiver, smtp_sink() as smtp_port:
        issuer = DevIssuer(Path(tmp) / "issuer")
        # Every topic up front, as the deployment's topic job does (the services then start without waiting).
        await ensure_topics(base["KSBB_KAFKA_BOOTSTRAP"], [*all_topics_with_dlqs(), ROUND_TRIP], prefix)
        # The notifier's e-mails (to the donor and the recipient's organisation on every pledge) go to a
        # mail server that accepts them, as in a deployment.
        env = {**service_env(base, issuer, prefix), "KSBB_NOTIFIER_SMTP_PORT": str(smtp_port)}
        with started_services(env, logs) as processes:
            await wait_ready(processes, logs, within=300)
            api = {name: url for name, (_, url) in processes.items()}
            admin = {"authorization": f"Bearer {issuer.token('admin', subject='bench-admin', ttl_seconds=7200)}"}
            async with httpx.AsyncClient(base_url=api["notifier"], timeout=30, headers=admin) as notifier:
                endpoint = await notifier.post("/v1/webhooks/endpoints", json={
                    "url": receiver, "description": "propagation benchmark", "event_types": ["ksbb.pledge.created*"]})
                if endpoint.status_code != 201:
                    raise SystemExit(f"registering the webhook endpoint failed: {endpoint.status_code} {endpoint.text}")
                secret_box["secret"] = endpoint.json()["secret"]
            seeded = time.monotonic()
            needs = await seed(api, issuer, args.needs)
            donors = [{"authorization": f"Bearer {issuer.token('donor', subject=f'bench-donor-{n}', ttl_seconds=7200)}"}
                      for n in range(DONORS)]
            await record_donor_contacts(api["pledges"], donors)
            limits = httpx.Limits(max_connections=args.in_flight, max_keepalive_connections=args.in_flight,
                                  keepalive_expiry=1)
            opened = asyncio.Event()
            streaming = asyncio.create_task(live_stream(f"{api['publisher']}/v1/public/feed/stream", stream_arrivals,
                                                        opened))
            await asyncio.wait_for(opened.wait(), timeout=60)
            round_trip = RoundTrip(base["KSBB_KAFKA_BOOTSTRAP"], prefix + ROUND_TRIP.name)
            await round_trip.start()
            tap = EventTap(base["KSBB_KAFKA_BOOTSTRAP"], prefix + PLEDGES.name)
            await tap.start()
            try:
                async with httpx.AsyncClient(base_url=api["pledges"], timeout=120, limits=limits) as client:
                    warm = await first_pledges(client, needs, donors)
                    waited = await wait_arrived(warm, [stream_arrivals, webhook_arrivals], args.drain)
                    missing = sum(p not in stream_arrivals.at or p not in webhook_arrivals.at for p in warm)
                    if missing:
                        lost = {end: [p for p in warm if p not in arrivals.at]
                                for end, arrivals in (("live stream", stream_arrivals), ("webhook", webhook_arrivals))}
                        raise SystemExit(f"{missing} of {len(warm)} warm-up pledges did not arrive at both ends "
                                         f"within {args.drain:.0f} s ({lost}); see {logs}")
                    print(f"seeded {len(needs)} needs; warm-up pledges arrived "
                          f"{time.monotonic() - seeded:.0f}s after seeding began ({waited:.1f}s drain)", flush=True)
                    if args.warm_up > 0:
                        # Kafka's and the database server's JVMs start cold in the fresh infrastructure: their
                        # JIT compilers take much of the CPU at first (see the idle benchmark), which a deployed
                        # stack, running warm, does not pay. The steps measure the warm stack.
                        warming = Step(rates[0])
                        await run_step(client, warming, args.warm_up, needs, donors, args.in_flight)
                        drained = await wait_arrived(list(warming.answered), [stream_arrivals, webhook_arrivals],
                                                     args.drain, processes)
                        results.notes.append(
                            f"warm-up before the steps, not counted: {args.warm_up:g} s at {rates[0]:g} pledges/s "
                            f"({len(warming.answered)} pledges, arrived {drained:.1f} s after it), because Kafka's "
                            "and the database server's JVMs start cold on the fresh infrastructure")
                        print(f"        {results.notes[-1]}", flush=True)
                    await asyncio.sleep(min(2.0, args.seconds))
                    idle = {name: rss_mib(process.pid) for name, (process, _) in processes.items()}
                    services = {name: process.pid for name, (process, _) in processes.items()}
                    watched = dict(services)
                    for component, label in (("mongo", "database server"), ("kafka", "Kafka")):
                        pid = infra_pid(component)
                        if pid is not None:
                            watched[label] = pid
                    profiled = False
                    round_trip.take()
                    sampler = RssSampler({name: process.pid for name, (process, _) in processes.items()})
                    sampler.start()
                    for rate in rates:
                        step = Step(rate)
                        timings = await notifier_timings(api["notifier"])
                        # Until a step misses the goal, each is profiled (one py-spy on one service, a few % of
                        # a core): the first miss is only known afterwards, and a repeat would cost minutes.
                        profiling = (None if profiled else
                                     asyncio.create_task(profile_busiest(services, args.seconds)))
                        cpu_before, sending = cpu_now(watched), time.monotonic()
                        await run_step(client, step, args.seconds, needs, donors, args.in_flight)
                        step.cpu = cpu_shares(cpu_before, cpu_now(watched), time.monotonic() - sending)
                        if profiling is not None:
                            step.profile = await profiling
                        step.drained_after = await wait_arrived(list(step.answered),
                                                                [stream_arrivals, webhook_arrivals], args.drain,
                                                                processes)
                        step.round_trip = round_trip.take()
                        settle(step, stream_arrivals, webhook_arrivals, tap)
                        steps.append(step)
                        print(f"{rate:6.0f}/s: {step.achieved:6.1f}/s answered (API p50 {ms(step.api, 0.5):.1f} ms, "
                              f"{step.failed} failed); live stream p50 {ms(step.stream, 0.5):.1f} / p99 "
                              f"{ms(step.stream, 0.99):.1f} / max {ms(step.stream, 1.0):.1f} ms "
                              f"({step.stream_missing} missing); webhook p50 {ms(step.webhook, 0.5):.1f} / p99 "
                              f"{ms(step.webhook, 0.99):.1f} / max {ms(step.webhook, 1.0):.1f} ms "
                              f"({step.webhook_missing} missing); raw Kafka round trip p50 "
                              f"{ms(step.round_trip, 0.5):.1f} ms; drained in {step.drained_after:.1f}s; "
                              f"{step.unsent} not sent (the step's time was up)", flush=True)
                        results.notes.append(hop_line(step))
                        print(f"        {results.notes[-1]}", flush=True)
                        if not profiled and not step.within_goal():
                            profiled = True
                            results.notes.append(profile_line(step))
                            print(f"        {results.notes[-1]}", flush=True)
                        results.notes.append(notifier_line(timings, await notifier_timings(api["notifier"])))
                        print(f"        {results.notes[-1]}", flush=True)
                        if step.achieved < 0.5 * rate and rate != rates[-1]:
                            # The API answers less than half the rate: higher steps only take longer to say so.
                            skipped = [r for r in rates if r > rate]
                            results.notes.append(
                                f"stopped after {rate:g} pledges/s: the API answered {step.achieved:.1f}/s; steps "
                                f"{', '.join(f'{r:g}' for r in skipped)} pledges/s not run")
                            break
                        if step.stream_missing or step.webhook_missing:
                            # Let the backlog go before the next step, so steps do not pile onto each other.
                            for _ in range(int(args.drain)):
                                if not await lag(processes):
                                    break
                                await asyncio.sleep(1)
                    loaded = await sampler.stop()
            finally:
                streaming.cancel()
                await asyncio.gather(streaming, return_exceptions=True)
                await round_trip.stop()
                await tap.stop()
    if any(percentile(values, 0.5) < 0 for step in steps for values in step.hops.values()):
        results.notes.append(
            "Negative hop figures: the benchmark's one process sends the pledges, reads their 201s, the event tap "
            "and the live stream; when it is CPU-starved (high rates on a loaded machine) it notices a 201 after "
            "the event was already in Kafka (first hop negative) and reads the tap's records late (the Kafka hop "
            "long, the hops after it negative). Every figure counts from the moment the benchmark saw the 201, so "
            "at those rates the end-to-end times are, if anything, too short.")
    report(results, steps, idle, loaded, webhook_arrivals.rejected, stream_arrivals.resumed)
    results.write(args.json)


def report(results: Results, steps: list[Step], idle: dict[str, float], loaded: dict[str, float],
           rejected: int, resumed: int) -> None:
    """Rows per step and end, the knee, RSS per service, the p99 plot."""
    for step in steps:
        trip = percentile(step.round_trip, 0.5) * 1000
        for end, values, missing in (("public live stream", step.stream, step.stream_missing),
                                     ("webhook", step.webhook, step.webhook_missing)):
            p50, p99 = ms(values, 0.5), ms(values, 0.99)
            arrived = bool(values)
            if not arrived:
                # Nothing reached this end: its p50 is at least as long as the step and its drain lasted.
                p50 = p99 = (step.seconds + step.drained_after) * 1000
            met = arrived and p99 <= P99_GOAL_MS and not missing and p50 <= RTT_FACTOR * trip
            results.add(Row(
                f"propagation at {step.rate:g} pledges/s: 201 → {end} (p50)", p50, "ms",
                f"p99 ≤ {P99_GOAL_MS:g} ms; p50 ≤ {RTT_FACTOR:g}× raw round trip", round(trip, 2),
                "ms raw Kafka produce → consume p50, same step", round(ratio(p50, trip, smaller_is_better=True), 2)
                if trip else None, met,
                ("" if arrived else "none arrived within the step and its drain (the figure is that time, a lower "
                 "bound); ")
                + f"p99 {p99:.1f} ms, max {ms(values, 1.0):.1f} ms, {missing} of {len(step.answered)} not arrived "
                f"after the drain; achieved {step.achieved:.1f} pledges/s, {step.unsent} not sent (API p50 "
                f"{ms(step.api, 0.5):.1f} ms, "
                f"p99 {ms(step.api, 0.99):.1f} ms, {step.failed} failed); raw round trip p99 "
                f"{ms(step.round_trip, 0.99):.1f} ms",
            ))
    knee = 0.0
    for step in steps:
        if not step.within_goal():
            break
        knee = step.rate
    below = [s for s in steps if s.rate <= knee]
    fast = all(percentile(s.stream, 0.5) <= RTT_FACTOR * percentile(s.round_trip, 0.5)
               and percentile(s.webhook, 0.5) <= RTT_FACTOR * percentile(s.round_trip, 0.5) for s in below)
    results.add(Row(
        "propagation knee: highest rate with p99 ≤ 150 ms at both ends (directly to the services)", knee,
        "pledges/s", f"≥ {KNEE_GOAL:g} pledges/s; p50 ≤ {RTT_FACTOR:g}× raw round trip below it", met=knee >= KNEE_GOAL
        and fast and bool(below),
        note=f"steps {', '.join(f'{s.rate:g}' for s in steps)} pledges/s; "
             + (f"below the knee p50 {'stays' if fast else 'does not stay'} within {RTT_FACTOR:g}× the raw round "
                "trip" if below else "no step met the goal")
             + "; pledges sent "
             f"straight to the pledges service's port (not through the gateway); {rejected} webhook deliveries "
             f"failed signature verification; the live stream was resumed {resumed} times with Last-Event-ID (the "
             "publisher ends the stream of a reader too slow to keep up, as this process is when CPU-starved)",
    ))
    for name in idle:
        peak = max(loaded.get(name, 0.0), 0.0)
        results.add(Row(
            f"propagation: {name} RSS under the load (peak, up to {steps[-1].rate:g} pledges/s)", round(peak, 1),
            "MiB",
            f"≤ {RSS_IDLE_GOAL:g} MiB idle, ≤ {RSS_LOADED_GOAL:g} MiB loaded",
            met=idle[name] <= RSS_IDLE_GOAL and peak <= RSS_LOADED_GOAL,
            note=f"idle (seeded, before the load) {idle[name]:.1f} MiB",
        ))
    for end, pick in (("live stream p99", lambda s: s.stream), ("webhook p99", lambda s: s.webhook),
                      ("raw Kafka round trip p99", lambda s: s.round_trip)):
        results.series.append(Series("propagation_p99", end, "pledges/s", "p99 from the 201 (ms)",
                                     [(s.rate, ms(pick(s), 0.99)) for s in steps]))


if __name__ == "__main__":
    asyncio.run(main())
