"""Benchmark: webhook fan-out to 100 local endpoints, all healthy vs. one endpoint hanging.

Runs the notifier in-process on the real local Kafka and MongoDB (`deploy/local/infra up`), starts
100 tiny HTTP receivers on 127.0.0.1, publishes `ksbb.need.opened.v1` events at a steady rate and
measures, per delivery, the time from publishing the event to the receiver getting the webhook.

Prints throughput and the healthy endpoints' p50/p99 latency for both runs; the ratio of the p99s is
the isolation figure (close to 1.0 = a hanging endpoint does not slow the others down).

    export $(cat .ksbb/infra/infra.env | xargs)
    uv run --no-sync python bench/notifier_bench.py --rate 5 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from ksbb_contracts import CONTENT_TYPE, CloudEvent
from ksbb_contracts.events.registry import NeedOpened, NeedPublic
from ksbb_contracts.vocab import Item, NeedStatus, Priority
from ksbb_kit.auth import DevIssuer
from ksbb_kit.ids import new_id
from ksbb_kit.kafka import KafkaRecordPublisher
from ksbb_notifier.bootstrap import create_app
from ksbb_notifier.settings import NotifierSettings

CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


@dataclass
class Receivers:
    """100 HTTP/1.1 receivers on their own ports; one may be told to hang."""

    count: int
    hanging: set[int] = field(default_factory=set)
    ports: list[int] = field(default_factory=list)
    latencies: dict[int, list[float]] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)
    received: int = 0
    warmed: int = 0
    servers: list[asyncio.Server] = field(default_factory=list)

    async def start(self) -> None:
        """Listen on `count` free ports."""
        for index in range(self.count):
            server = await asyncio.start_server(
                lambda r, w, i=index: self._serve(i, r, w),
                host="127.0.0.1",
                port=0,
                backlog=256,
            )
            self.servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])
            self.latencies[index] = []

    async def stop(self) -> None:
        """Close every listener."""
        for server in self.servers:
            server.close()

    async def _serve(self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = CONTENT_LENGTH.search(head)
                body = await reader.readexactly(int(match.group(1)) if match else 0)
                if index in self.hanging:
                    await asyncio.sleep(3600)
                need_id = json.loads(body)["data"]["need"]["need_id"]
                if need_id == "need_warmup":
                    self.warmed += 1
                elif need_id in self.published:
                    self.latencies[index].append(time.perf_counter() - self.published[need_id])
                    self.received += 1
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def poll(condition: Callable[[], bool], seconds: float) -> None:
    """Wait until a condition holds or the time is up."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)


def need_event(need_id: str) -> NeedOpened:
    """A programme-wide event every endpoint receives."""
    return NeedOpened(
        need=NeedPublic(
            need_id=need_id,
            recipient_id="rcp_bench",
            organisation_id="org_bench",
            kelurahan_code="31.71.01.1001",
            item=Item.SEMBAKO,
            quantity=10,
            unit="paket",
            priority=Priority.HIGH,
            needed_by=date(2026, 2, 1),
            status=NeedStatus.OPEN,
            version=1,
        ),
        occurred_at=datetime.now(UTC),
    )


@contextlib.asynccontextmanager
async def notifier(args: argparse.Namespace, issuer: DevIssuer) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """A notifier app with its own namespace, delivering on its own."""
    settings = NotifierSettings(
        env="test",
        topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
        jwks_url=str(issuer.jwks_path),
        jwt_issuer=issuer.issuer,
        jwt_audience=issuer.audience,
        insecure_http_hosts=["127.0.0.1"],
        ssrf_allow_hosts=["127.0.0.1"],
        delivery_timeout_seconds=args.timeout,
        mailer_autostart=False,
        per_endpoint_concurrency=args.per_endpoint,
        global_concurrency=args.global_limit,
        retry_schedule_seconds=[0, 5, 30],
        outbox_sweep_seconds=0.5,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier", timeout=30) as client:
            for _ in range(300):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
            yield app, client


async def run(args: argparse.Namespace, issuer: DevIssuer, *, hang: bool) -> dict[str, float]:
    """One measured run; returns throughput and healthy-endpoint latency figures."""
    receivers = Receivers(args.endpoints, hanging={0} if hang else set())
    await receivers.start()
    admin = {"authorization": f"Bearer {issuer.token('admin')}"}
    async with notifier(args, issuer) as (app, client):
        for port in receivers.ports:
            created = await client.post(
                "/v1/webhooks/endpoints", headers=admin, json={"url": f"http://127.0.0.1:{port}/hook"}
            )
            created.raise_for_status()
        topic = app.state.notifier.settings.topic(NeedOpened.topic.name)
        publisher = KafkaRecordPublisher(app.state.notifier.settings.kafka_bootstrap, client_id="bench")
        await publisher.start()
        # Warm-up: the consumer group must own its partitions before latencies mean anything.
        warmup = need_event("need_warmup")
        await publisher.send(
            topic,
            warmup.subject,
            CloudEvent(
                id=new_id("evt"),
                source="/ksbb/bench",
                type=warmup.event_type,
                subject=warmup.subject,
                time=datetime.now(UTC),
                data=warmup.model_dump(mode="json"),
            ).to_bytes(),
            {"content-type": CONTENT_TYPE},
        )
        healthy = args.endpoints - len(receivers.hanging)
        await poll(lambda: receivers.warmed >= healthy, args.drain_seconds)
        total = int(args.rate * args.seconds)
        started = time.perf_counter()
        for index in range(total):
            # Steady rate: publish on schedule, never in bursts to catch up.
            await asyncio.sleep(max(0.0, started + index / args.rate - time.perf_counter()))
            event = need_event(f"need_bench_{index}")
            envelope = CloudEvent(
                id=new_id("evt"),
                source="/ksbb/bench",
                type=event.event_type,
                subject=event.subject,
                time=datetime.now(UTC),
                data=event.model_dump(mode="json"),
            )
            receivers.published[event.need.need_id] = time.perf_counter()
            await publisher.send(topic, envelope.subject, envelope.to_bytes(), {"content-type": CONTENT_TYPE})
        await publisher.stop()
        expected = total * healthy
        await poll(lambda: receivers.received >= expected, args.drain_seconds)
        elapsed = time.perf_counter() - started
    await receivers.stop()
    samples = sorted(s for i, values in receivers.latencies.items() if i not in receivers.hanging for s in values)
    if not samples:
        raise SystemExit("no deliveries arrived; is the infrastructure up?")
    return {
        "delivered": len(samples),
        "expected": expected,
        "seconds": elapsed,
        "throughput": len(samples) / elapsed,
        "p50_ms": statistics.median(samples) * 1000,
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000,
    }


async def main() -> None:
    """Both runs, then the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0, help="events per second (each goes to every endpoint)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=5.0, help="delivery timeout (the hanging endpoint)")
    parser.add_argument("--per-endpoint", type=int, default=4)
    parser.add_argument("--global-limit", type=int, default=64)
    parser.add_argument("--drain-seconds", type=float, default=60.0)
    args = parser.parse_args()
    issuer = DevIssuer(Path(tempfile.mkdtemp(prefix="ksbb-bench-issuer-")))
    print(
        f"fan-out: {args.endpoints} endpoints, {args.rate}/s events for {args.seconds}s "
        f"(={args.endpoints * args.rate:.0f} deliveries/s offered)"
    )
    healthy = await run(args, issuer, hang=False)
    hanging = await run(args, issuer, hang=True)
    for name, figures in (("all healthy", healthy), ("one hanging", hanging)):
        print(
            f"{name:12}: {figures['delivered']}/{figures['expected']} delivered "
            f"in {figures['seconds']:.1f}s, "
            f"throughput {figures['throughput']:.0f}/s, healthy p50 {figures['p50_ms']:.0f} ms, "
            f"p99 {figures['p99_ms']:.0f} ms"
        )
    print(f"isolation ratio (p99 one hanging / p99 all healthy): {hanging['p99_ms'] / healthy['p99_ms']:.2f}")
    print(f"throughput ratio (one hanging / all healthy): {hanging['throughput'] / healthy['throughput']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
