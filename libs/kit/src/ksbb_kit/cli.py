"""`ksbb` admin command: dev tokens, topic creation, dead-letter inspection and replay, stuck job items,
reconciliation of owners' and consumers' views."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from ksbb_contracts.topics import all_topics_with_dlqs
from pymongo import AsyncMongoClient

from ksbb_kit.deadletters import (
    DLQ_HEADER_PREFIX,
    ORIGINAL_TOPIC,
    PAYLOAD_REF,
    DeadLetterPayloads,
    parse_payload_reference,
)
from ksbb_kit.jobs import StuckItems
from ksbb_kit.kafka import KafkaConnection, KafkaRecordPublisher, ensure_topics, kafka_connection, topic_partitions
from ksbb_kit.reconcile import OwnerDatabaseMissing, check
from ksbb_kit.settings import KitSettings
from ksbb_kit.token_cli import add_token_arguments, run_token_command

DEFAULT_ISSUER_DIR = Path(os.environ.get("KSBB_DEV_ISSUER_DIR", ".ksbb/dev-issuer"))


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


async def _dead_letter_records(bootstrap: str | KafkaConnection, dlq: str, limit: int) -> list[Any]:
    """The raw records of a dead-letter topic, oldest first."""
    options = kafka_connection(bootstrap).client_options()
    admin = AIOKafkaAdminClient(**options)
    try:
        await admin.start()
        tps = (await topic_partitions(admin, [dlq]))[dlq]
    finally:
        await admin.close()
    if not tps:
        return []
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
    try:
        await consumer.start()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []

        async def unread() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await unread() and len(records) < limit:
            batch = await consumer.getmany(timeout_ms=1000)
            for tp_records in batch.values():
                records.extend(tp_records)
        return records[:limit]
    finally:
        await consumer.stop()


def _text_or_base64(name: str, raw: bytes | None) -> dict[str, Any]:
    """`{name: text}` for UTF-8, else `{name: None, name_base64: ...}` so nothing is mangled in the listing."""
    if raw is None:
        return {name: None}
    try:
        return {name: raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {name: None, f"{name}_base64": base64.b64encode(raw).decode()}


def _listing(record: Any) -> dict[str, Any]:
    headers = {k: (v or b"").decode(errors="replace") for k, v in record.headers}
    entry: dict[str, Any] = {"partition": record.partition, "offset": record.offset}
    entry.update(_text_or_base64("key", record.key))
    entry.update(_text_or_base64("value", record.value))
    entry["headers"] = headers
    if PAYLOAD_REF in headers:
        entry["payload_ref"] = headers[PAYLOAD_REF]  # the full record: `ksbb dlq show <dlq> --offset N`
    return entry


async def read_dead_letters(
    bootstrap: str | KafkaConnection, dlq: str, limit: int = 1000
) -> list[dict[str, Any]]:
    """Every record of a dead-letter topic, oldest first (key/value as text, or base64 when not UTF-8)."""
    return [_listing(record) for record in await _dead_letter_records(bootstrap, dlq, limit)]


async def fetch_payload(mongodb_url: str, reference: str) -> dict[str, Any] | None:
    """The full key, value and headers a too-large dead letter refers to (None when not stored)."""
    database, payload_id = parse_payload_reference(reference)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        return await DeadLetterPayloads(mongo[database]).fetch(payload_id)
    finally:
        await mongo.close()


async def show_dead_letter(
    bootstrap: str | KafkaConnection, dlq: str, offset: int, mongodb_url: str
) -> dict[str, Any] | None:
    """One dead letter with its full payload (fetched from the service's database when it was too large)."""
    for record in await _dead_letter_records(bootstrap, dlq, limit=1_000_000):
        if record.offset != offset:
            continue
        entry = _listing(record)
        if "payload_ref" in entry:
            stored = await fetch_payload(mongodb_url, entry["payload_ref"])
            if stored is None:
                entry["payload"] = None
            else:
                entry["payload"] = {
                    **_text_or_base64("key", stored["key"]), **_text_or_base64("value", stored["value"]),
                    "headers": {k: v.decode(errors="replace") for k, v in stored["headers"]},
                }
        return entry
    return None


async def replay_dead_letters(
    bootstrap: str | KafkaConnection, dlq: str, offsets: set[int] | None, mongodb_url: str | None = None,
) -> int:
    """Re-publish chosen dead letters (all when offsets is None) to their original topic, byte for byte;
    a dead letter whose payload was set aside is replayed from the stored full payload."""
    records = await _dead_letter_records(bootstrap, dlq, limit=1_000_000)
    publisher = KafkaRecordPublisher(bootstrap, client_id="ksbb-dlq-replay")
    await publisher.start()
    count = 0
    try:
        for record in records:
            if offsets is not None and record.offset not in offsets:
                continue
            annotations = {k: (v or b"").decode(errors="replace") for k, v in record.headers
                           if k.startswith(DLQ_HEADER_PREFIX)}
            key: bytes | None = record.key
            value: bytes | None = record.value
            headers: dict[str, str | bytes] = {k: v or b"" for k, v in record.headers
                                               if not k.startswith(DLQ_HEADER_PREFIX)}
            if PAYLOAD_REF in annotations:
                stored = await fetch_payload(mongodb_url or _kafka_settings().mongodb_url, annotations[PAYLOAD_REF])
                if stored is None:
                    raise SystemExit(f"offset {record.offset}: payload {annotations[PAYLOAD_REF]} is not stored")
                key, value = stored["key"], stored["value"]
                headers = {k: v for k, v in stored["headers"] if not k.startswith(DLQ_HEADER_PREFIX)}
            await publisher.send(annotations[ORIGINAL_TOPIC], key, value, headers)
            count += 1
    finally:
        await publisher.stop()
    return count


async def trim_dead_letters(bootstrap: str | KafkaConnection, dlq: str, before: int | None = None) -> int:
    """Delete a dead-letter topic's records before an offset (all present ones by default); returns how many.

    Replay does not remove letters; trimming after a replay (or a decision to drop them) empties the topic,
    which clears `ksbb_dead_letter_records` and the KsbbDeadLettersPresent alert.
    """
    options = kafka_connection(bootstrap).client_options()
    admin = AIOKafkaAdminClient(**options)
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
    try:
        await admin.start()
        await consumer.start()
        tps = (await topic_partitions(admin, [dlq]))[dlq]
        if not tps:
            raise SystemExit(f"no topic {dlq}")
        starts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        cut = {tp: ends[tp] if before is None else max(starts[tp], min(before, ends[tp])) for tp in tps}
        await admin.delete_records({tp: RecordsToDelete(before_offset=offset) for tp, offset in cut.items()})
        return sum(cut[tp] - starts[tp] for tp in tps)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        await admin.close()


def cmd_dlq_trim(args: argparse.Namespace) -> int:
    """Delete dead letters (replayed or dropped) so the topic holds only what still needs attention."""
    print(json.dumps({"deleted": asyncio.run(trim_dead_letters(_bootstrap(args), args.dlq, args.before))}))
    return 0


def cmd_dlq_list(args: argparse.Namespace) -> int:
    """List the records of a dead-letter topic."""
    for record in asyncio.run(read_dead_letters(_bootstrap(args), args.dlq)):
        print(json.dumps(record, ensure_ascii=False))
    return 0


def cmd_dlq_show(args: argparse.Namespace) -> int:
    """Show one dead letter with its full payload."""
    mongodb = args.mongodb or _kafka_settings().mongodb_url
    entry = asyncio.run(show_dead_letter(_bootstrap(args), args.dlq, args.offset, mongodb))
    if entry is None:
        print(f"no record at offset {args.offset} in {args.dlq}", file=sys.stderr)
        return 1
    print(json.dumps(entry, ensure_ascii=False))
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    """Re-publish chosen dead letters to their original topic."""
    offsets = None if args.all else set(args.offset or [])
    if offsets == set():
        print("give --offset N (repeatable) or --all", file=sys.stderr)
        return 2
    replayed = asyncio.run(replay_dead_letters(_bootstrap(args), args.dlq, offsets, args.mongodb))
    print(json.dumps({"replayed": replayed}))
    return 0


async def stuck_items(mongodb_url: str, database: str, job: str | None) -> list[dict[str, Any]]:
    """The job items a service's sweeps could not process (`ksbb_kit.jobs`), oldest first."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        return await StuckItems(mongo[database]).listing(job)
    finally:
        await mongo.close()


def cmd_jobs_stuck(args: argparse.Namespace) -> int:
    """List the stuck items of a service's jobs."""
    settings = _kafka_settings()
    database = args.database or f"{args.prefix.replace('.', '_')}ksbb_{args.service}"
    for marker in asyncio.run(stuck_items(args.mongodb or settings.mongodb_url, database, args.job)):
        print(json.dumps(marker, ensure_ascii=False, default=str))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Print each aggregate whose views differ (one JSON line each); exit 1 when any does, 2 when an owner's
    database is missing. A consumer without a database is skipped (one JSON line on stderr)."""
    service_urls = dict(item.split("=", 1) for item in args.service_mongodb or [])
    try:
        found = asyncio.run(check(args.mongodb or _kafka_settings().mongodb_url, prefix=args.prefix,
                                  service_urls=service_urls))
    except OwnerDatabaseMissing as missing:
        print(f"ksbb reconcile: {missing}: check --mongodb, --service-mongodb and --prefix", file=sys.stderr)
        return 2
    for skipped in found.skipped:
        print(json.dumps(skipped.as_dict()), file=sys.stderr)
    differences = found.differences
    for difference in differences:
        print(json.dumps(difference.as_dict(), ensure_ascii=False))
    print(f"{len(differences)} difference(s)", file=sys.stderr)
    return 1 if differences else 0


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
    show = dlq_sub.add_parser("show", help="one dead letter with its full payload (also one set aside as too large)")
    show.add_argument("dlq")
    show.add_argument("--offset", type=int, required=True)
    show.add_argument("--mongodb", help="MongoDB URL of the service databases (default: $KSBB_MONGODB_URL)")
    show.set_defaults(func=cmd_dlq_show)
    replay = dlq_sub.add_parser("replay", help="re-publish dead letters to their original topic")
    replay.add_argument("dlq")
    replay.add_argument("--offset", type=int, action="append")
    replay.add_argument("--all", action="store_true")
    replay.add_argument("--mongodb", help="MongoDB URL for payloads set aside (default: $KSBB_MONGODB_URL)")
    replay.set_defaults(func=cmd_dlq_replay)
    trim = dlq_sub.add_parser("trim", help="delete dead letters already replayed or dropped (all, or --before)")
    trim.add_argument("dlq")
    trim.add_argument("--before", type=int, help="keep the records from this offset on (default: delete all)")
    trim.set_defaults(func=cmd_dlq_trim)

    jobs = sub.add_parser("jobs", help="background jobs")
    jobs_sub = jobs.add_subparsers(dest="action", required=True)
    stuck = jobs_sub.add_parser("stuck", help="items a service's sweeps skipped because they raised")
    stuck.add_argument("service", choices=["registry", "pledges", "notifier", "publisher"])
    stuck.add_argument("--job", help="only this job (e.g. pledge-expiry)")
    stuck.add_argument("--prefix", default=os.environ.get("KSBB_TOPIC_PREFIX", ""),
                       help="namespace prefix of the service's database (tests)")
    stuck.add_argument("--database", help="the service's database (default: ksbb_<service>)")
    stuck.add_argument("--mongodb", help="MongoDB URL (default: $KSBB_MONGODB_URL)")
    stuck.set_defaults(func=cmd_jobs_stuck)

    check = sub.add_parser(
        "reconcile", help="aggregates whose consumers' views differ from the owner's (exit 1: some)",
        description="Compare the owners' state (registry, pledges) with every view of it: the registry's and "
                    "publisher's need ledgers, the publisher's needs, recipients, organisations, pledges and "
                    "donors, the pledges service's and the notifier's recipient and organisation replicas, and "
                    "the recipient blocking on each pledges ledger. One JSON line per differing aggregate and "
                    "view on stdout; exit 1 when any differs. A consumer (publisher, notifier) whose database "
                    "does not exist is not deployed there: it is skipped, with one line "
                    '{"view": ..., "database": ..., "skipped": "no database"} on stderr, and is no difference. '
                    "Exit 2 when an owner's database (registry, pledges) does not exist.")
    check.add_argument("--prefix", default=os.environ.get("KSBB_TOPIC_PREFIX", ""),
                       help="namespace prefix of the service databases (tests)")
    check.add_argument("--mongodb", help="MongoDB URL of the service databases (default: $KSBB_MONGODB_URL)")
    check.add_argument("--service-mongodb", action="append", metavar="SERVICE=URL",
                       help="a service whose database is on another server (repeatable), e.g. pledges=mongodb://...")
    check.set_defaults(func=cmd_reconcile)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ksbb`."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
