"""`ksbb` admin command: dev tokens, topic creation, dead-letter inspection and replay."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from ksbb_contracts.topics import all_topics_with_dlqs

from ksbb_kit.kafka import KafkaConnection, KafkaRecordPublisher, ensure_topics, kafka_connection, topic_partitions
from ksbb_kit.settings import KitSettings
from ksbb_kit.token_cli import add_token_arguments, run_token_command

DEFAULT_ISSUER_DIR = Path(os.environ.get("KSBB_DEV_ISSUER_DIR", ".ksbb/dev-issuer"))
ORIGINAL_TOPIC = "ksbb-dlq-topic"


def _kafka_settings() -> KitSettings:
    """The shared `KSBB_KAFKA_*` settings (TLS, SASL/SCRAM, replication); service checks do not apply here."""
    return KitSettings(env="development")


def _bootstrap(args: argparse.Namespace) -> KafkaConnection:
    connection = _kafka_settings().kafka_connection
    return replace(connection, bootstrap=args.bootstrap) if args.bootstrap else connection


def cmd_token(args: argparse.Namespace) -> int:
    """Print an access token: from the identity provider (client credentials, --device login) or, with --dev,
    a development token (see ksbb_kit.token_cli)."""
    return run_token_command(args)


def cmd_topics(args: argparse.Namespace) -> int:
    """Create every topic and dead-letter topic with explicit partitions and retention."""
    replication = args.replication_factor or _kafka_settings().kafka_replication_factor
    created = asyncio.run(ensure_topics(_bootstrap(args), all_topics_with_dlqs(), args.prefix,
                                        replication_factor=replication))
    print(json.dumps({"created": created}))
    return 0


def cmd_topics_render(args: argparse.Namespace) -> int:
    """Write (or with --check, verify) the deploy files rendered from the contracts' topics."""
    from ksbb_kit.topics_render import stale_files, write_all

    root = Path(args.root)
    if args.check:
        stale = stale_files(root)
        for path in stale:
            print(f"stale: {path} (run `ksbb topics render`)", file=sys.stderr)
        return 1 if stale else 0
    print(json.dumps({"written": write_all(root)}))
    return 0


async def read_dead_letters(
    bootstrap: str | KafkaConnection, dlq: str, limit: int = 1000
) -> list[dict[str, Any]]:
    """Every record of a dead-letter topic, oldest first."""
    options = kafka_connection(bootstrap).client_options()
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        tps = (await topic_partitions(admin, [dlq]))[dlq]
    finally:
        await admin.close()
    if not tps:
        return []
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[dict[str, Any]] = []
        async def unread() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await unread() and len(records) < limit:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp_records in batch.values():
                for record in tp_records:
                    records.append({
                        "partition": record.partition, "offset": record.offset,
                        "key": record.key.decode() if record.key else None,
                        "value": record.value.decode(errors="replace") if record.value is not None else None,
                        "headers": {k: v.decode(errors="replace") for k, v in record.headers},
                    })
        return records
    finally:
        await consumer.stop()


async def replay_dead_letters(bootstrap: str | KafkaConnection, dlq: str, offsets: set[int] | None) -> int:
    """Re-publish chosen dead letters (all when offsets is None) to their original topic."""
    records = await read_dead_letters(bootstrap, dlq)
    publisher = KafkaRecordPublisher(bootstrap, client_id="ksbb-dlq-replay")
    await publisher.start()
    count = 0
    try:
        for record in records:
            if offsets is not None and record["offset"] not in offsets:
                continue
            headers = {k: v for k, v in record["headers"].items() if not k.startswith("ksbb-dlq-")}
            value = record["value"]
            await publisher.send(record["headers"][ORIGINAL_TOPIC], record["key"],
                                 value.encode() if value is not None else None, headers)
            count += 1
    finally:
        await publisher.stop()
    return count


def cmd_dlq_list(args: argparse.Namespace) -> int:
    """List the records of a dead-letter topic."""
    for record in asyncio.run(read_dead_letters(_bootstrap(args), args.dlq)):
        print(json.dumps(record, ensure_ascii=False))
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    """Re-publish chosen dead letters to their original topic."""
    offsets = None if args.all else set(args.offset or [])
    if offsets == set():
        print("give --offset N (repeatable) or --all", file=sys.stderr)
        return 2
    print(json.dumps({"replayed": asyncio.run(replay_dead_letters(_bootstrap(args), args.dlq, offsets))}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="ksbb", description=__doc__)
    parser.add_argument("--bootstrap", help="Kafka bootstrap (default: $KSBB_KAFKA_BOOTSTRAP)")
    sub = parser.add_subparsers(dest="command", required=True)

    token = sub.add_parser("token", help="print an access token (identity provider; --dev: development issuer)")
    add_token_arguments(token)
    token.set_defaults(func=cmd_token)

    topics = sub.add_parser("topics", help="topic administration")
    topics_sub = topics.add_subparsers(dest="action", required=True)
    create = topics_sub.add_parser("create", help="create every topic and DLQ")
    create.add_argument("--prefix", default=os.environ.get("KSBB_TOPIC_PREFIX", ""))
    create.add_argument("--replication-factor", type=int,
                        help="replicas per topic (default: $KSBB_KAFKA_REPLICATION_FACTOR or 1)")
    create.set_defaults(func=cmd_topics)
    render = topics_sub.add_parser("render", help="write the Strimzi and compose topic files from the contracts")
    render.add_argument("--root", default=".", help="repository root (default: current directory)")
    render.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    render.set_defaults(func=cmd_topics_render)

    dlq = sub.add_parser("dlq", help="dead-letter topics")
    dlq_sub = dlq.add_subparsers(dest="action", required=True)
    listing = dlq_sub.add_parser("list", help="list a DLQ, e.g. ksbb.pledges.ledger.registry.dlq")
    listing.add_argument("dlq")
    listing.set_defaults(func=cmd_dlq_list)
    replay = dlq_sub.add_parser("replay", help="re-publish dead letters to their original topic")
    replay.add_argument("dlq")
    replay.add_argument("--offset", type=int, action="append")
    replay.add_argument("--all", action="store_true")
    replay.set_defaults(func=cmd_dlq_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ksbb`."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
