"""Publisher benchmark: projection replay vs raw consume + bulk write, SSE fan-out latency, RSS.

Run against the local infrastructure (not part of the test suite):

    export $(cat .ksbb/infra/infra.env | xargs)
    uv run --no-sync python bench/publisher_bench.py --events 1000000 --clients 1000

1. Publishes N realistic public events (recipients, needs, ledger changes, donors, pledge lifecycles) to
   fresh topics, then measures in the same run:
   - baseline: read every record from offset 0 and bulk-insert the raw envelopes (no logic), events/s;
   - projection: `ksbb-publisher rebuild` of the same topics into the read models, events/s;
   and prints the ratio.
2. Starts the publisher (uvicorn, real port), opens C SSE clients, publishes pledges and reports the
   delivery latency (publish → received by every client) p50/p99, plus the process RSS idle and under load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from ksbb_contracts import CONTENT_TYPE, CloudEvent
from ksbb_contracts.areas import areas
from ksbb_contracts.topics import all_topics_with_dlqs
from ksbb_kit.kafka import KafkaRecordPublisher, ensure_topics
from ksbb_kit.mongo import connect
from ksbb_publisher.bootstrap import create_app
from ksbb_publisher.handlers import public_event_types
from ksbb_publisher.rebuild import rebuild
from ksbb_publisher.settings import PublisherSettings
from ksbb_publisher.testing import NOW, donor, ledger, need, organisation, pledge, recipient, served


def rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scenario(n_events: int) -> list[Any]:
    """About n_events public events: each recipient has one need, a donor and several pledge lifecycles."""
    kelurahan = [a.code for a in areas().level("kelurahan")]
    events: list[Any] = [organisation("org_bench", "Yayasan Benchmark")]
    r = 0
    while len(events) < n_events:
        kel = kelurahan[r % len(kelurahan)]
        rid, nid, did = f"rcp_{r}", f"need_{r}", f"donor_{r % 5000}"
        events += [
            recipient(rid, "org_bench", kel, f"RW {r % 20 + 1:02d}", households=20 + r % 80),
            need(nid, rid, "org_bench", kel, quantity=100),
            donor(did, f"Donor {r}", show=r % 2 == 0),
        ]
        for p in range(4):
            pid, at = f"plg_{r}_{p}", NOW + timedelta(minutes=r + p)
            events += [
                pledge(pid, nid, rid, "org_bench", did, kel, quantity=5, at=at),
                ledger(
                    nid, rid, requested=100, committed=5 * p + 5, delivered=5 * p, version=2 * p + 1, at=at
                ),
                pledge(pid, nid, rid, "org_bench", did, kel, quantity=5, version=3, delivered=5, at=at),
                ledger(
                    nid, rid, requested=100, committed=5 * p, delivered=5 * p + 5, version=2 * p + 2, at=at
                ),
            ]
        r += 1
    return events[:n_events]


async def publish(settings: PublisherSettings, events: list[Any]) -> None:
    """Publish events fast (batched sends, one ack wait per batch)."""
    producer = KafkaRecordPublisher(settings.kafka_bootstrap, client_id="ksbb-bench")
    await producer.start()
    try:
        raw = producer._producer
        pending = []
        for event in events:
            envelope = CloudEvent(
                id=uuid.uuid4().hex,
                source="/ksbb/bench",
                type=event.event_type,
                subject=event.subject,
                time=NOW,
                data=event.model_dump(mode="json"),
            )
            pending.append(
                await raw.send(
                    settings.topic(event.topic.name),
                    envelope.to_bytes(),
                    key=envelope.subject.encode(),
                    headers=[("content-type", CONTENT_TYPE.encode())],
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def baseline(settings: PublisherSettings, database: str) -> int:
    """Raw consume of every public topic from offset 0 + bulk insert of the envelopes; returns records."""
    topics = sorted({settings.topic(cls.topic.name) for cls in public_event_types()})
    client = connect(settings.mongodb_url)
    collection = client[database]["raw_events"]
    await collection.drop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    count = 0
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=2000)
            docs = [
                {"_id": f"{r.topic}/{r.partition}/{r.offset}", "value": r.value}
                for records in batches.values()
                for r in records
            ]
            if docs:
                await collection.insert_many(docs, ordered=False)
                count += len(docs)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
        await client.drop_database(database)
        await client.close()
    return count


async def sse_fanout(settings: PublisherSettings, clients: int, pledges: int) -> dict[str, float]:
    """Open `clients` SSE streams, publish pledges, measure publish → receipt latency at every client."""
    app = create_app(settings)
    latencies: list[float] = []
    sent_at: dict[str, float] = {}
    async with served(app) as base:
        idle = rss_mib()
        limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
        async with httpx.AsyncClient(
            base_url=base, timeout=httpx.Timeout(10, read=120), limits=limits
        ) as http:
            ready = asyncio.Event()
            opened = 0
            done = asyncio.Event()
            expected = clients * pledges

            async def listen() -> None:
                nonlocal opened
                async with http.stream("GET", "/v1/public/feed/stream") as response:
                    opened += 1
                    if opened == clients:
                        ready.set()
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            pid = line.split('"pledge_id": "')[1].split('"')[0]
                            latencies.append(time.perf_counter() - sent_at[pid])
                            if len(latencies) >= expected:
                                done.set()
                                return
                            if done.is_set():
                                return

            tasks = [asyncio.create_task(listen()) for _ in range(clients)]
            await asyncio.wait_for(ready.wait(), timeout=120)
            await asyncio.sleep(1)
            for n in range(pledges):
                pid = f"plg_sse_{n}"
                sent_at[pid] = time.perf_counter()
                event = pledge(
                    pid,
                    "need_0",
                    "rcp_0",
                    "org_bench",
                    "donor_0",
                    "31.71.01.1001",
                    at=NOW + timedelta(days=1, seconds=n),
                )
                await publish(settings, [event])
                await asyncio.sleep(0.2)
            loaded = rss_mib()
            try:
                await asyncio.wait_for(done.wait(), timeout=120)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    ordered = sorted(latencies)
    return {
        "deliveries": len(ordered),
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
        "rss_idle_mib": idle,
        "rss_load_mib": loaded,
    }


async def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--pledges", type=int, default=20, help="pledges published during the SSE test")
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = PublisherSettings(
        kafka_bootstrap=os.environ.get("KSBB_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        mongodb_url=os.environ.get("KSBB_MONGODB_URL", "mongodb://127.0.0.1:27018/"),
        topic_prefix=prefix,
        log_level="WARNING",
        sse_queue_size=1024,
        feed_poll_seconds=5,
    )
    await ensure_topics(settings.kafka_bootstrap, all_topics_with_dlqs(), prefix)
    events = scenario(args.events)
    started = time.perf_counter()
    await publish(settings, events)
    print(f"published {len(events)} events in {time.perf_counter() - started:.1f}s (prefix {prefix})")
    print(f"RSS before replay: {rss_mib():.0f} MiB")

    started = time.perf_counter()
    raw = await baseline(settings, f"{settings.database_name}_baseline")
    base_s = time.perf_counter() - started
    started = time.perf_counter()
    counts = await rebuild(settings)
    proj_s = time.perf_counter() - started
    print(f"baseline raw consume + bulk write: {raw} records in {base_s:.1f}s = {raw / base_s:,.0f} events/s")
    print(
        f"projection replay (rebuild):       {counts['applied']} events in {proj_s:.1f}s = "
        f"{counts['applied'] / proj_s:,.0f} events/s"
    )
    print(f"projection / baseline throughput ratio: {(counts['applied'] / proj_s) / (raw / base_s):.2f}")
    print(f"RSS after replay: {rss_mib():.0f} MiB")

    # The SSE part runs on fresh topics: a new consumer group would otherwise first re-read the whole replay.
    sse_prefix = f"bench{uuid.uuid4().hex[:6]}."
    await ensure_topics(settings.kafka_bootstrap, all_topics_with_dlqs(), sse_prefix)
    sse_settings = settings.model_copy(update={"topic_prefix": sse_prefix})
    figures = await sse_fanout(sse_settings, args.clients, args.pledges)
    await_drop = connect(settings.mongodb_url)
    await await_drop.drop_database(sse_settings.database_name)
    await await_drop.close()
    print(
        f"SSE fan-out to {args.clients} clients: {figures['deliveries']:.0f} deliveries, "
        f"p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms"
    )
    print(
        f"RSS (benchmark process incl. server and clients): idle {figures['rss_idle_mib']:.0f} MiB, "
        f"under load {figures['rss_load_mib']:.0f} MiB"
    )
    client = connect(settings.mongodb_url)
    await client.drop_database(settings.database_name)
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
