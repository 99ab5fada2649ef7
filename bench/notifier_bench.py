"""Notifier benchmark: webhook throughput and latency to 100 local endpoints, one hanging endpoint's effect on
the others, and how fast the notifier works off an event backlog.

    uv run --no-sync python bench/notifier_bench.py [--endpoints 100] [--rates 1,2,4,8] [--seconds 5]
    uv run --no-sync python bench/notifier_bench.py --tiny            # a smoke run (the test suite's)

Runs the real notifier (`python -m ksbb_notifier.main`, own namespace and database) and, in this process,
HTTP/1.1 receivers on 127.0.0.1 (keep-alive; every 20th request's Standard Webhooks signature verified;
one can be told to hang). Every endpoint is programme-wide and takes `ksbb.need.opened.v1`.

* backlog: `--backlog` `ksbb.need.changed.v1` events (a webhook type no endpoint takes: the full fan-out
  path, no delivery) published at once; events/s until the consumer group has committed them all
  (goal ≥ 500 events/s);
* burst: `--burst` events at once, each to every endpoint; deliveries/s from the first publish to the
  last receipt (goal ≥ 500 deliveries/s); the CPU share of every process (notifier, database server, Kafka,
  this process's receivers) and a sampled profile of the notifier by package go into the notes;
* rates: need events at each of `--rates` per second for `--seconds`; per delivery the time from
  publishing to receipt; p50/p99 against the delivery rate is the plot. The steps stop at the first one
  the notifier does not keep up with (all delivered, at ≥ 80 % of the offered rate), or before one offering
  over twice the burst's rate: higher ones would only measure a growing queue;
* isolation: the middle rate again, with one endpoint hanging; the healthy endpoints' p99 against the
  same run without it (goal ≤ 1.2×).

Also reported: TCP connections the receivers accepted per 1,000 deliveries (keep-alive reuse) and the
notifier's RSS idle and under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import pstats
import re
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from common import (
    Results,
    Row,
    Series,
    bench_arguments,
    cpu_seconds,
    free_port,
    infra_env,
    infra_pid,
    ratio,
    rss_mib,
    sampled_profiles,
)
from ksbb_contracts import CONTENT_TYPE, TYPE_HEADER, CloudEvent, Event
from ksbb_contracts.events.registry import NeedChanged, NeedOpened, NeedPublic
from ksbb_contracts.vocab import Item, NeedStatus, Priority
from ksbb_kit.auth import DevIssuer
from ksbb_kit.ids import new_id
from ksbb_kit.kafka import KafkaRecordPublisher
from standardwebhooks.webhooks import Webhook

CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)
TAKES = "ksbb.need.opened.v1"
#: A healthy run's p99 (ms) at or above which the isolation comparison has no verdict (the queue was saturated).
SATURATED_P99_MS = 1000
#: A rate step delivering less than this share of the offered rate is saturated: no higher steps.
KEPT_UP_SHARE = 0.8
#: A rate step offering more than this multiple of the burst's delivery rate is not run (saturated anyway).
BEYOND_BURST = 2.0


@dataclass
class Receivers:
    """HTTP/1.1 receivers on their own ports, recording when each webhook arrived; one may hang."""

    count: int
    secrets: dict[int, str] = field(default_factory=dict)
    hanging: set[int] = field(default_factory=set)
    ports: list[int] = field(default_factory=list)
    #: When each event was published (every phase's), and the events of the phase being measured.
    published: dict[str, float] = field(default_factory=dict)
    current: set[str] = field(default_factory=set)
    latencies: dict[int, list[float]] = field(default_factory=dict)
    first: float = 0.0
    last: float = 0.0
    received: int = 0
    #: Deliveries received over every phase (never reset).
    total: int = 0
    connections: int = 0
    verified: int = 0
    bad_signatures: int = 0
    servers: list[asyncio.Server] = field(default_factory=list)

    async def start(self) -> None:
        """Listen on `count` free ports."""
        for index in range(self.count):
            server = await asyncio.start_server(
                functools.partial(self._serve, index), host="127.0.0.1", port=0, backlog=512
            )
            self.servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])
            self.latencies[index] = []

    async def stop(self) -> None:
        """Close every listener."""
        for server in self.servers:
            server.close()

    def reset(self) -> None:
        """Start a new measurement (deliveries of earlier phases still count in `total` only)."""
        self.current.clear()
        self.latencies = {i: [] for i in range(self.count)}
        self.received, self.first, self.last = 0, 0.0, 0.0

    def healthy_samples(self) -> list[float]:
        """Latencies (s) at the endpoints that do not hang, sorted."""
        return sorted(s for i, values in self.latencies.items() if i not in self.hanging for s in values)

    async def _serve(self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = CONTENT_LENGTH.search(head)
                body = await reader.readexactly(int(match.group(1)) if match else 0)
                arrived = time.perf_counter()
                if index in self.hanging:
                    await asyncio.sleep(3600)
                try:
                    key = json.loads(body)["data"]["need"]["need_id"]
                except (ValueError, KeyError, TypeError):
                    key = None  # not one of ours (some other local client found this port)
                if key in self.published:
                    self.total += 1
                if key in self.current:
                    self.latencies[index].append(arrived - self.published[key])
                    self.received += 1
                    self.first = self.first or arrived
                    self.last = arrived
                    if self.received % 20 == 0:
                        self._verify(index, head, body)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _verify(self, index: int, head: bytes, body: bytes) -> None:
        headers = dict(
            line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
        )
        try:
            Webhook(self.secrets[index]).verify(body, {k.lower(): v for k, v in headers.items()})
            self.verified += 1
        except Exception:
            self.bad_signatures += 1


def need(need_id: str) -> NeedPublic:
    """A need snapshot (programme-wide: every endpoint may receive it)."""
    return NeedPublic(
        need_id=need_id, recipient_id="rcp_bench", organisation_id="org_bench", kelurahan_code="31.71.01.1001",
        item=Item.SEMBAKO, quantity=10, unit="paket", priority=Priority.HIGH,
        needed_by=date.today() + timedelta(days=30), status=NeedStatus.OPEN, version=1,
    )


def record(event: Event) -> tuple[str, bytes, dict[str, str]]:
    """An event as its owner's relay would publish it: key, structured CloudEvent, headers."""
    envelope = CloudEvent(
        id=new_id("evt"), source="/ksbb/bench", type=event.event_type, subject=event.subject,
        time=datetime.now(UTC), data=event.model_dump(mode="json"),
    )
    return envelope.subject or "", envelope.to_bytes(), {"content-type": CONTENT_TYPE, TYPE_HEADER: envelope.type}


async def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll until a condition holds or the time is up; whether it held."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


async def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of `topic` the consumer group has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())]
        if not partitions:
            await consumer.topics()
            partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or set())]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return sum(ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                   for tp in partitions)
    finally:
        await consumer.stop()
        await admin.close()


@dataclass
class Phase:
    """One measured run: deliveries received, how long, the healthy endpoints' latencies."""

    delivered: int
    expected: int
    seconds: float
    samples: list[float]

    @property
    def rate(self) -> float:
        """Deliveries per second."""
        return self.delivered / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """A latency percentile in ms (nan without samples)."""
        if not self.samples:
            return float("nan")
        return self.samples[min(len(self.samples) - 1, int(len(self.samples) * q))] * 1000


async def main() -> None:
    """Start the notifier and the receivers, run the phases, report."""
    parser = bench_arguments(__doc__)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--rates", default="1,2,4,8", help="need events per second (each to every endpoint)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each rate")
    parser.add_argument("--burst", type=int, default=20, help="events published at once (× endpoints deliveries)")
    parser.add_argument("--backlog", type=int, default=3000, help="events of the backlog phase")
    parser.add_argument("--timeout", type=float, default=5.0, help="delivery timeout (the hanging endpoint)")
    parser.add_argument("--per-endpoint", type=int, default=4)
    parser.add_argument("--global-limit", type=int, default=64)
    parser.add_argument("--drain-seconds", type=float, default=60.0)
    parser.add_argument("--profile-seconds", type=float, default=5.0,
                        help="how long py-spy samples the notifier during the burst (0: not at all)")
    parser.add_argument("--profile", help="run the notifier under cProfile and write its profile here (slower)")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    if args.tiny:
        args.endpoints, rates, args.seconds, args.burst, args.backlog = 10, [1.0, 2.0], 3.0, 3, 100
        args.profile_seconds = min(args.profile_seconds, 1.0)
    results = Results("notifier")
    env = infra_env()
    state = Path(tempfile.mkdtemp(prefix="ksbb-bench-notifier-"))
    issuer = DevIssuer(state / "issuer")
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    port = free_port()
    child_env = {
        **os.environ, **env, "KSBB_NOTIFIER_HTTP_PORT": str(port), "KSBB_TOPIC_PREFIX": prefix,
        "KSBB_ENV": "development", "KSBB_DEV_ISSUER_ENABLED": "true", "KSBB_JWKS_URL": str(issuer.jwks_path),
        "KSBB_JWT_ISSUER": issuer.issuer, "KSBB_JWT_AUDIENCE": issuer.audience, "KSBB_LOG_LEVEL": "WARNING",
        "KSBB_NOTIFIER_INSECURE_HTTP_HOSTS": '["127.0.0.1"]', "KSBB_NOTIFIER_SSRF_ALLOW_HOSTS": '["127.0.0.1"]',
        "KSBB_NOTIFIER_DELIVERY_TIMEOUT_SECONDS": str(args.timeout), "KSBB_NOTIFIER_MAILER_AUTOSTART": "false",
        "KSBB_NOTIFIER_PER_ENDPOINT_CONCURRENCY": str(args.per_endpoint),
        "KSBB_NOTIFIER_GLOBAL_CONCURRENCY": str(args.global_limit),
        "KSBB_NOTIFIER_RETRY_SCHEDULE_SECONDS": "[0, 5, 30]",
    }
    log = (state / "notifier.log").open("wb")
    notifier = await asyncio.create_subprocess_exec(
        sys.executable, *(["-m", "cProfile", "-o", args.profile] if args.profile else []), "-m", "ksbb_notifier.main",
        env=child_env, stdout=log, stderr=log,
    )
    receivers = Receivers(args.endpoints)
    await receivers.start()
    publisher = KafkaRecordPublisher(env["KSBB_KAFKA_BOOTSTRAP"], client_id="notifier-bench")
    base = f"http://127.0.0.1:{port}"
    admin = {"authorization": f"Bearer {issuer.token('admin')}"}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"the notifier did not become ready; log in {state}")
                await asyncio.sleep(0.3)
            for index, receiver_port in enumerate(receivers.ports):
                created = await client.post("/v1/webhooks/endpoints", headers=admin, json={
                    "url": f"http://127.0.0.1:{receiver_port}/hook", "event_types": [TAKES],
                })
                created.raise_for_status()
                receivers.secrets[index] = created.json()["secret"]
            idle = rss_mib(notifier.pid)
        await publisher.start()
        topic = prefix + NeedOpened.topic.name
        group = prefix + "notifier"

        async def publish(events: list[Event], stamp: bool) -> None:
            for event in events:
                key, value, headers = record(event)
                if stamp and isinstance(event, NeedOpened):
                    receivers.published[event.need.need_id] = time.perf_counter()
                    receivers.current.add(event.need.need_id)
                await publisher.send(topic, key, value, headers)

        # Warm-up: the consumer owns its partitions and every endpoint has been reached once.
        await publish([NeedOpened(need=need("need_warmup"), occurred_at=datetime.now(UTC))], stamp=True)
        await wait_for(lambda: receivers.received >= args.endpoints, args.drain_seconds)
        peak = rss_mib(notifier.pid)

        # Backlog: events no endpoint takes, published at once; consumed when the group has committed them.
        backlog = [NeedChanged(need=need(f"need_backlog_{i}"), occurred_at=datetime.now(UTC))
                   for i in range(args.backlog)]
        started = time.perf_counter()
        sends = []
        for event in backlog:
            key, value, headers = record(event)
            sends.append(publisher.send(topic, key, value, headers))
        await asyncio.gather(*sends)
        published_in = time.perf_counter() - started
        while await group_lag(env["KSBB_KAFKA_BOOTSTRAP"], group, topic) > 0:
            if time.perf_counter() - started > args.drain_seconds * 5:
                raise SystemExit("the backlog was not consumed in time")
            await asyncio.sleep(0.2)
        consumed = args.backlog / (time.perf_counter() - started)
        print(f"backlog: {args.backlog} events published in {published_in:.1f} s, consumed at {consumed:.0f}/s",
              flush=True)
        results.add(Row("notifier: event backlog consumed", round(consumed, 1), "events/s", "≥ 500 events/s",
                        met=consumed >= 500, note=f"{args.backlog} events of a webhook type no endpoint takes"))

        # Burst: every event to every endpoint at once.
        receivers.reset()
        processes = {"notifier": notifier.pid, "database server": infra_pid("mongo"), "Kafka": infra_pid("kafka"),
                     "receivers (this process)": os.getpid()}
        cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items() if pid}
        profiling = (asyncio.create_task(sampled_profiles({"notifier": notifier.pid}, args.profile_seconds))
                     if args.profile_seconds > 0 else None)
        started = time.perf_counter()
        await publish([NeedOpened(need=need(f"need_burst_{i}"), occurred_at=datetime.now(UTC))
                       for i in range(args.burst)], stamp=True)
        expected = args.burst * args.endpoints
        await wait_for(lambda: receivers.received >= expected, args.drain_seconds)
        burst = Phase(receivers.received, expected, receivers.last - started, receivers.healthy_samples())
        busy = time.perf_counter() - started
        shares = {name: (cpu_seconds(processes[name] or 0) - before) / busy for name, before in cpu_before.items()}
        load = os.getloadavg()[0]
        #: CPU milliseconds per delivery, by process.
        cost = {name: share * busy / max(1, burst.delivered) * 1000 for name, share in shares.items()}
        per_delivery, together = cost["notifier"], sum(cost.values())
        cores = os.cpu_count() or 1
        results.notes.append(
            f"CPU during the burst ({burst.delivered} deliveries in {busy:.1f} s), in cores: "
            + ", ".join(f"{name} {share:.2f}" for name, share in shares.items())
            + f" of {cores}; load average {load:.1f} (the machine may have been shared while measured). "
            "Per delivery: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in cost.items()) + " of CPU. "
            f"The notifier alone on a core of its own: at most {1000 / per_delivery if per_delivery else 0:.0f} "
            f"deliveries/s; everything on these {cores} cores: at most "
            f"{cores * 1000 / together if together else 0:.0f} deliveries/s."
        )
        if profiling is not None:
            profile = (await profiling)["notifier"]
            results.notes.append(f"Sampled profile of the notifier during the burst (py-spy, by package): {profile}.")
            print(f"burst profile of the notifier: {profile}", flush=True)
        print(f"burst CPU (cores): {', '.join(f'{n} {s:.2f}' for n, s in shares.items())}; load {load:.1f}",
              flush=True)
        peak = max(peak, rss_mib(notifier.pid))
        print(f"burst: {burst.delivered}/{expected} in {burst.seconds:.1f} s = {burst.rate:.0f} deliveries/s, "
              f"p50 {burst.percentile(0.5):.0f} ms, p99 {burst.percentile(0.99):.0f} ms", flush=True)
        results.add(Row(f"notifier: webhook deliveries to {args.endpoints} endpoints (burst)", round(burst.rate, 1),
                        "deliveries/s", "≥ 500 deliveries/s", met=burst.rate >= 500,
                        note=f"{burst.delivered}/{expected} delivered; p99 {burst.percentile(0.99):.0f} ms"))

        async def steady(rate: float, *, hang: bool) -> Phase:
            receivers.reset()
            receivers.hanging = {0} if hang else set()
            total = max(1, int(rate * args.seconds))
            started = time.perf_counter()
            for index in range(total):
                await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
                tag = f"need_{'hang' if hang else 'rate'}_{rate:g}_{index}"
                await publish([NeedOpened(need=need(tag), occurred_at=datetime.now(UTC))], stamp=True)
            healthy = args.endpoints - len(receivers.hanging)
            await wait_for(lambda: receivers.received >= total * healthy, args.drain_seconds)
            return Phase(receivers.received, total * healthy, receivers.last - started, receivers.healthy_samples())

        connections_before, delivered_before = receivers.connections, receivers.total
        p50_series = Series("webhook_p99_vs_rate", "p50", "offered deliveries/s", "publish → receipt (ms)")
        p99_series = Series("webhook_p99_vs_rate", "p99", p50_series.x_label, p50_series.y_label)
        for rate in rates:
            offered = rate * args.endpoints
            if offered > BEYOND_BURST * burst.rate and p99_series.points:
                # Saturated by the burst's measure already: such a step only grows a queue (minutes of drain).
                print(f"{offered:.0f}/s offered: over {BEYOND_BURST:g}× the burst's rate, no higher steps", flush=True)
                results.notes.append(
                    f"The rate steps stopped before {offered:.0f} deliveries/s offered: over {BEYOND_BURST:g}× the "
                    f"burst's {burst.rate:.0f}/s, so saturated without measuring it."
                )
                break
            phase = await steady(rate, hang=False)
            print(f"rate {offered:.0f}/s offered: {phase.delivered}/{phase.expected} delivered at {phase.rate:.0f}/s, "
                  f"p50 {phase.percentile(0.5):.0f} ms, p99 {phase.percentile(0.99):.0f} ms", flush=True)
            p50_series.points.append((offered, round(phase.percentile(0.5), 1)))
            p99_series.points.append((offered, round(phase.percentile(0.99), 1)))
            peak = max(peak, rss_mib(notifier.pid))
            if phase.delivered < phase.expected or phase.rate < KEPT_UP_SHARE * offered:
                print(f"saturated at {offered:.0f}/s offered: no higher steps", flush=True)
                results.notes.append(
                    f"The rate steps stopped at {offered:.0f} deliveries/s offered: {phase.rate:.0f}/s delivered "
                    f"(under {KEPT_UP_SHARE:.0%} of the offered rate, or not all delivered); higher steps would only "
                    "measure a growing queue."
                )
                break
        results.series += [p50_series, p99_series]
        reused_over = receivers.total - delivered_before
        reuse = (receivers.connections - connections_before) / max(1, reused_over) * 1000

        # Below saturation (half the burst's throughput at most): a saturated queue delays everyone alike,
        # which would hide what a hanging endpoint does to the others.
        middle = min(rates[len(rates) // 2], max(0.2, 0.5 * burst.rate / args.endpoints))
        # ... and on an empty queue: what earlier steps left behind is delivered first.
        everything = len(receivers.published) * args.endpoints
        await wait_for(lambda: receivers.total >= everything, args.drain_seconds * 5)
        calm = await steady(middle, hang=False)
        stormy = await steady(middle, hang=True)
        # Everything arriving in the end is not enough: a queue seconds long means the notifier was saturated,
        # and a saturated queue delays every endpoint alike whether one hangs or not.
        kept_up = (
            calm.delivered == calm.expected
            and stormy.delivered == stormy.expected
            and calm.percentile(0.99) < SATURATED_P99_MS
        )
        receivers.hanging = set()
        print(f"isolation at {middle * args.endpoints:.0f}/s: healthy p99 {calm.percentile(0.99):.0f} ms without, "
              f"{stormy.percentile(0.99):.0f} ms with one endpoint hanging", flush=True)
        isolation = ratio(stormy.percentile(0.99), calm.percentile(0.99), smaller_is_better=True)
        results.add(Row(
            "notifier: healthy endpoints' p99 with one endpoint hanging", round(stormy.percentile(0.99), 1), "ms",
            "≤ 1.2× without it", round(calm.percentile(0.99), 1), "ms, the same run without a hanging endpoint",
            round(isolation, 2), isolation >= 1 / 1.2 if kept_up else None,
            f"{middle * args.endpoints:.0f} deliveries/s offered; {calm.delivered}/{calm.expected} delivered without, "
            f"{stormy.delivered}/{stormy.expected} with"
            + ("" if kept_up else f" (no verdict: saturated, or p99 without ≥ {SATURATED_P99_MS} ms)"),
        ))
        results.add(Row("notifier: new connections per 1,000 deliveries", round(reuse, 1), "connections",
                        "keep-alive reuse (≈ 0)", note=f"over the {reused_over} deliveries of the rate steps; "
                        f"{receivers.verified} signatures verified, "
                        f"{receivers.bad_signatures} bad"))
        results.add(Row("notifier: RSS idle", round(idle, 1), "MiB", "≤ 150 MiB", met=idle <= 150))
        results.add(Row("notifier: RSS under load (peak)", round(peak, 1), "MiB", "≤ 300 MiB", met=peak <= 300))
        if receivers.bad_signatures:
            raise SystemExit(f"{receivers.bad_signatures} webhooks carried a bad signature")
    finally:
        await publisher.stop()
        await receivers.stop()
        # cProfile writes its profile only when the process ends normally: uvicorn re-raises SIGTERM after
        # shutting down (ending the process at once), SIGINT becomes a KeyboardInterrupt.
        with contextlib.suppress(ProcessLookupError):  # it may have ended already (e.g. its port was taken)
            notifier.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
        try:
            await asyncio.wait_for(notifier.wait(), timeout=30)
        except TimeoutError:
            notifier.kill()
        log.close()
    if args.profile and (summary := profile_summary(args.profile)):
        results.notes.append(summary)
        print(summary, flush=True)
    results.write(args.json)


def profile_summary(path: str, top: int = 12) -> str | None:
    """The functions the notifier spent most of its own time in (from its cProfile output, if written)."""
    if not os.path.exists(path):
        return None
    stats = pstats.Stats(path)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
    named = [f"{Path(file).name}:{line} {name} {own / total:.0%}" for (file, line, name), (_, _, own, _, _) in rows]
    return f"Profile of the notifier ({total:.0f} s of its own CPU time), by own time: " + "; ".join(named)


if __name__ == "__main__":
    asyncio.run(main())
