"""Readiness probe used by `deploy/local/infra up` (Python flavour).

    python probe.py kafka 127.0.0.1:19092 [--timeout 10]
    python probe.py mongo mongodb://127.0.0.1:27018/ [--timeout 10]

One attempt per call; exit 0 when the component really works, non-zero (with a
one-line reason on stderr) otherwise. The infra script calls it in a loop.

kafka: creates the scratch topic `__ksbb_probe` explicitly with the admin client
       (the broker runs with auto.create.topics.enable=false), produces one
       record with acks=all, reads exactly that record back, and commits its
       offset for the group `__ksbb_probe` (which also creates
       __consumer_offsets, so the first real consumer group does not pay for it).
mongo: `ping` through PyMongo, which also enforces PyMongo's minimum wire version.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

PROBE_TOPIC = "__ksbb_probe"


async def probe_kafka(bootstrap: str, wait_s: float) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError
    from aiokafka.structs import OffsetAndMetadata

    timeout_ms = int(wait_s * 1000)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        try:
            await admin.create_topics(
                [NewTopic(PROBE_TOPIC, num_partitions=1, replication_factor=1)],
                timeout_ms=timeout_ms,
            )
        except TopicAlreadyExistsError:
            pass
        # aiokafka reports per-topic errors in the response instead of raising for some
        # versions; describing the topic is the reliable "it exists now" check.
        described = await admin.describe_topics([PROBE_TOPIC])
        errors = [t.get("error_code", 0) for t in described]
        if any(errors):
            raise RuntimeError(f"topic {PROBE_TOPIC} not ready: {described}")
    finally:
        await admin.close()

    payload = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=timeout_ms,
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(PROBE_TOPIC, payload, partition=0)
    finally:
        await producer.stop()

    tp = TopicPartition(PROBE_TOPIC, meta.partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=PROBE_TOPIC,
        enable_auto_commit=False,
        request_timeout_ms=max(timeout_ms, 5000),
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), wait_s)
        if record.value != payload:
            raise RuntimeError(f"read back {record.value!r}, expected {payload!r}")
        await consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "")})
    finally:
        await consumer.stop()


async def probe_mongo(url: str, wait_s: float) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(
        url, serverSelectionTimeoutMS=int(wait_s * 1000), connectTimeoutMS=int(wait_s * 1000)
    )
    try:
        reply = await client.admin.command("ping")
        if reply.get("ok") != 1:
            raise RuntimeError(f"ping answered {reply}")
    finally:
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("component", choices=["kafka", "mongo", "imports"])
    parser.add_argument("target", nargs="?")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if args.component == "imports":
        import aiokafka  # noqa: F401
        import pymongo  # noqa: F401

        return 0
    probe = probe_kafka if args.component == "kafka" else probe_mongo
    try:
        asyncio.run(asyncio.wait_for(probe(args.target, args.timeout), args.timeout + 5))
    except Exception as exc:  # report any failure as "not ready yet"
        print(f"{args.component} not ready: {type(exc).__name__}: {exc}".strip(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
