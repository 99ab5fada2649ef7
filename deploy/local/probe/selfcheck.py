"""End-to-end feature check of the local stack: `deploy/local/infra check`.

Reads KSBB_KAFKA_BOOTSTRAP and KSBB_MONGODB_URL (the infra.env values) and exercises the
features the platform relies on. Prints one line per check and exits non-zero on failure.

    mongo: insert/find, find_one_and_update, unique index rejects duplicates,
           $inc guarded by a conditional filter, bulk_write (ordered).
    kafka: admin creates a 3-partition topic, idempotent producer (acks=all),
           consumer group with enable_auto_commit=False reads and commits,
           committed offsets are visible to the group afterwards,
           producing to a missing topic fails and does not create it.

Options: --mongo-only / --kafka-only, --keep (do not drop the scratch db/topic).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid

RESULTS: list[tuple[str, bool, str]] = []


def record(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}{'  - ' + detail if detail else ''}", flush=True)


async def check_mongo(url: str, keep: bool) -> None:
    from pymongo import AsyncMongoClient, InsertOne, ReturnDocument, UpdateOne
    from pymongo.errors import DuplicateKeyError

    client: AsyncMongoClient = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
    db_name = f"ksbb_selfcheck_{uuid.uuid4().hex[:8]}"
    db = client[db_name]
    try:
        hello = await client.admin.command("isMaster")  # mongo-java-server has no `hello`
        record(
            "mongo isMaster",
            hello.get("maxWireVersion", 0) >= 9,
            f"maxWireVersion={hello.get('maxWireVersion')}",
        )

        coll = db["orders"]
        await coll.insert_one({"_id": "o1", "status": "NEW", "qty": 1})
        found = await coll.find_one({"_id": "o1"})
        record("mongo insert_one/find_one", found == {"_id": "o1", "status": "NEW", "qty": 1}, repr(found))

        updated = await coll.find_one_and_update(
            {"_id": "o1", "status": "NEW"},
            {"$set": {"status": "PAID"}, "$push": {"events": {"type": "OrderPaid"}}},
            return_document=ReturnDocument.AFTER,
        )
        record(
            "mongo find_one_and_update (state + embedded event in one write)",
            updated is not None
            and updated["status"] == "PAID"
            and updated["events"] == [{"type": "OrderPaid"}],
            repr(updated),
        )

        await coll.create_index("ref", unique=True)
        await coll.insert_one({"_id": "o2", "ref": "R-1"})
        try:
            await coll.insert_one({"_id": "o3", "ref": "R-1"})
            record("mongo unique index rejects duplicate", False, "duplicate accepted")
        except DuplicateKeyError:
            record("mongo unique index rejects duplicate", True)

        stock = db["stock"]
        await stock.insert_one({"_id": "sku1", "available": 2})
        first = await stock.update_one({"_id": "sku1", "available": {"$gte": 2}}, {"$inc": {"available": -2}})
        second = await stock.update_one(
            {"_id": "sku1", "available": {"$gte": 2}}, {"$inc": {"available": -2}}
        )
        left = (await stock.find_one({"_id": "sku1"}) or {}).get("available")
        record(
            "mongo conditional $inc (no oversell)",
            first.modified_count == 1 and second.modified_count == 0 and left == 0,
            f"modified={first.modified_count},{second.modified_count} available={left}",
        )

        bulk = await db["bulk"].bulk_write(
            [
                InsertOne({"_id": 1, "n": 0}),
                InsertOne({"_id": 2, "n": 0}),
                UpdateOne({"_id": 1}, {"$inc": {"n": 5}}),
                UpdateOne({"_id": 3}, {"$set": {"n": 7}}, upsert=True),
            ]
        )
        docs = await db["bulk"].find({}, sort=[("_id", 1)]).to_list()
        record(
            "mongo bulk_write",
            bulk.inserted_count == 2
            and bulk.modified_count == 1
            and bulk.upserted_count == 1
            and [d["n"] for d in docs] == [5, 0, 7],
            f"inserted={bulk.inserted_count} modified={bulk.modified_count} upserted={bulk.upserted_count}",
        )
    except Exception as exc:
        record("mongo unexpected error", False, f"{type(exc).__name__}: {exc}")
    finally:
        if not keep:
            await client.drop_database(db_name)
        await client.close()


async def check_kafka(bootstrap: str, keep: bool) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    topic = f"ksbb.selfcheck.{uuid.uuid4().hex[:8]}"
    group = f"ksbb-selfcheck-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        described = await admin.describe_topics([topic])
        partitions = len(described[0]["partitions"]) if described else 0
        record("kafka admin create_topics (3 partitions)", partitions == 3, f"partitions={partitions}")

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            sent = []
            for i in range(9):
                meta = await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode())
                sent.append((meta.partition, meta.offset))
        finally:
            await producer.stop()
        used = sorted({p for p, _ in sent})
        record("kafka idempotent producer (acks=all)", len(sent) == 9, f"9 records over partitions {used}")

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        t0 = time.monotonic()
        await consumer.start()
        got: list[bytes] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < 9 and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend(r.value for r in records)
            await consumer.commit()
            committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
        finally:
            await consumer.stop()
        record(
            "kafka consumer group (manual commit) reads all",
            sorted(got) == sorted(f"v{i}".encode() for i in range(9)),
            f"{len(got)} records in {time.monotonic() - t0:.1f}s",
        )
        record(
            "kafka committed offsets",
            sum(v or 0 for v in committed.values()) == 9,
            f"{ {tp.partition: off for tp, off in committed.items()} }",
        )

        offsets = await admin.list_consumer_group_offsets(group)
        record("kafka admin list_consumer_group_offsets", sum(o.offset for o in offsets.values()) == 9)

        missing = f"{topic}.not-created"
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # expected "not found" errors
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        await producer.start()
        try:
            await producer.send_and_wait(missing, b"x")
            refused = False
        except KafkaError:
            refused = True
        finally:
            await producer.stop()
        exists = missing in await admin.list_topics()
        record(
            "kafka auto.create.topics.enable=false",
            refused and not exists,
            f"send refused={refused} created={exists}",
        )
        if not keep:
            await admin.delete_topics([topic])
    except Exception as exc:
        record("kafka unexpected error", False, f"{type(exc).__name__}: {exc}")
    finally:
        await admin.close()


async def amain(args: argparse.Namespace) -> None:
    if not args.kafka_only:
        await check_mongo(os.environ["KSBB_MONGODB_URL"], args.keep)
    if not args.mongo_only:
        await check_kafka(os.environ["KSBB_KAFKA_BOOTSTRAP"], args.keep)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mongo-only", action="store_true")
    parser.add_argument("--kafka-only", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    for var in ("KSBB_KAFKA_BOOTSTRAP", "KSBB_MONGODB_URL"):
        if var not in os.environ:
            print(f"{var} not set; run `deploy/local/infra up` and source its infra.env", file=sys.stderr)
            return 2
    asyncio.run(amain(args))
    failed = sum(1 for _, ok, _ in RESULTS if not ok)
    print(f"selfcheck: {len(RESULTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
