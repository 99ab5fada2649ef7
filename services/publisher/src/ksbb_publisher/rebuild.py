"""`ksbb-publisher rebuild`: drop the read models and project every public topic again from offset 0."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from ksbb_contracts import EVENT_TYPES, CloudEvent
from ksbb_kit.clock import SystemClock
from ksbb_kit.mongo import connect
from pydantic import ValidationError

from ksbb_publisher.adapters.projections import FEED_SEQUENCE, READ_MODELS, Projector
from ksbb_publisher.handlers import public_event_types
from ksbb_publisher.settings import PublisherSettings

log = logging.getLogger(__name__)


async def rebuild(
    settings: PublisherSettings, *, database: str | None = None, concurrency: int = 32
) -> dict[str, int]:
    """Rebuild the read models in `database` (default: the service's) from the topics' beginning.

    Reads up to the end offsets seen at the start; the service's consumer group continues from its own
    committed offsets afterwards, and events read by both are applied once thanks to idempotent projections.
    """
    wanted = {cls.event_type for cls in public_event_types()}
    topics = sorted({settings.topic(cls.topic.name) for cls in public_event_types()})
    client = connect(settings.mongodb_url)
    db = client[database or settings.database_name]
    projector = Projector(db, SystemClock())
    # Rebuilt feed entries get numbers above every `seq` handed out so far: SSE clients resuming with an
    # old Last-Event-ID then receive the rebuilt feed again (entry `id`s are stable) instead of missing it.
    floor = await projector.highest_feed_seq()
    await db[FEED_SEQUENCE].update_one({"_id": "feed"}, {"$max": {"floor": floor}}, upsert=True)
    for name in READ_MODELS:
        await db.drop_collection(name)
    await projector.ensure_indexes()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    counts = {"applied": 0, "skipped": 0, "malformed": 0}
    try:
        await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not partitions:
            return counts
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=2000)
            # Records of one aggregate (topic + key) stay in order; different aggregates are applied
            # concurrently — projections do not depend on the order across aggregates or topics.
            chains: dict[tuple[str, bytes | None], list[bytes | None]] = {}
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    chains.setdefault((tp.topic, record.key), []).append(record.value)
            await _apply_chains(projector, list(chains.values()), wanted, counts, concurrency)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
        await client.close()
    return counts


async def _apply_chains(
    projector: Projector,
    chains: list[list[bytes | None]],
    wanted: set[str],
    counts: dict[str, int],
    concurrency: int,
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def run(chain: list[bytes | None]) -> None:
        async with gate:
            for value in chain:
                await _apply_record(projector, value, wanted, counts)

    await asyncio.gather(*(run(chain) for chain in chains))


async def _apply_record(
    projector: Projector, value: bytes | None, wanted: set[str], counts: dict[str, int]
) -> None:
    if value is None:
        counts["skipped"] += 1
        return
    try:
        envelope = CloudEvent.from_bytes(value)
        if envelope.type not in wanted:
            counts["skipped"] += 1
            return
        event: Any = EVENT_TYPES[envelope.type].model_validate(envelope.data)
    except (ValidationError, ValueError):
        counts["malformed"] += 1  # the live consumer dead-letters these; a rebuild skips them the same way
        return
    await projector.apply(event, envelope)
    counts["applied"] += 1


def main(argv: list[str] | None = None) -> None:
    """Command line: rebuild the publisher's read models."""
    parser = argparse.ArgumentParser(prog="ksbb-publisher rebuild", description=__doc__)
    parser.add_argument("--database", help="target database (default: the service's own)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(asyncio.run(rebuild(PublisherSettings(), database=args.database))))


if __name__ == "__main__":
    main()
