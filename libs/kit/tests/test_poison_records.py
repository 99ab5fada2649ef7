"""No record stops a partition: every kind of unreadable or unroutable record produced straight to the real broker
is dead-lettered with its reason (readable with `ksbb dlq list` / `ksbb dlq show`), and the records behind it on
the same partition are processed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from ksbb_contracts import CONTENT_TYPE, CloudEvent
from ksbb_contracts.envelope import LEGACY_TYPE_HEADER
from ksbb_contracts.events import DonorProfileUpdated, NeedOpened
from ksbb_contracts.topics import DONORS, all_topics_with_dlqs
from ksbb_kit.kafka import ensure_topics
from ksbb_kit.testing.factories import envelope, make_event
from ksbb_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration
COLD_START = 90.0
PRODUCER_MAX_REQUEST = 1_048_576  # aiokafka's default max_request_size, below the broker's message.max.bytes


def good(donor_id: str) -> bytes:
    return envelope(DonorProfileUpdated(donor_id=donor_id, kind="person", version=1),
                    time=datetime.now(UTC)).to_bytes()


def envelope_bytes(event_type: str, data: dict[str, Any], subject: str = "don_x") -> bytes:
    return CloudEvent(id=f"evt_{event_type[-12:]}", source="/t", type=event_type, subject=subject,
                      time=datetime.now(UTC), data=data).to_bytes()


def near_the_limit(key: bytes, headers: list[tuple[str, bytes]]) -> bytes:
    """A value (not JSON) that makes the record just fit the producer's maximum request — its dead letter,
    with the annotation headers added, would not."""
    size = PRODUCER_MAX_REQUEST - 64
    value = b"{" + b"x" * (size - 1)
    while DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers) > PRODUCER_MAX_REQUEST - 64:
        value = value[:-512]
    return value


def ksbb(*args: str, bootstrap: str) -> list[dict[str, Any]]:
    """Run the `ksbb` admin command; its JSON lines."""
    result = subprocess.run([sys.executable, "-m", "ksbb_kit.cli", "--bootstrap", bootstrap, *args],
                            capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


async def test_every_kind_of_poison_record_is_dead_lettered_and_the_partition_moves_on(kit_processes) -> None:
    procs = kit_processes
    bootstrap = procs.infra.kafka_bootstrap
    await ensure_topics(bootstrap, all_topics_with_dlqs(), procs.namespace)
    topic = procs.namespace + DONORS.name
    ct = [("content-type", CONTENT_TYPE.encode())]
    huge_headers = [*ct, ("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")]
    poison: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = [
        ("undecodable", b"\xff\xfe-not-utf8", good("don_p1"), ct),
        ("undecodable", b"don_p2", good("don_p2"), [*ct, ("traceparent", b"\xc3\x28")]),
        ("malformed", b"don_p3", b"{not json", ct),
        # Content types the Kafka framework would decode itself (and fail on) reach the dispatcher as bytes.
        ("malformed", b"don_p3j", b"\xff{not json", [("content-type", b"application/json")]),
        ("malformed", b"don_p3t", b"\xff\xfe", [("content-type", b"text/plain")]),
        ("envelope", b"don_p4", b'{"hello": "world"}', ct),
        ("schema", b"don_p5", envelope_bytes(DonorProfileUpdated.event_type,
                                             {"donor_id": "don_p5", "kind": "not-a-kind", "version": 1}), ct),
        ("unknown_type", b"don_p6", envelope_bytes("ksbb.donor.renamed.v9", {"donor_id": "don_p6"}), ct),
        # A contract type this consumer has no handler for (another topic's event) is not silently dropped.
        ("unhandled_type", b"ned_p7", envelope(make_event(NeedOpened)).to_bytes(), ct),
        ("unexpected_tombstone", b"don_p8", None, []),
        ("malformed", b"don_p9", near_the_limit(b"don_p9", huge_headers), huge_headers),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        # Everything on partition 0: each poison record sits in front of a healthy one.
        for index, (_, key, value, headers) in enumerate(poison):
            await producer.send_and_wait(topic, value=value, key=key, headers=headers, partition=0)
            healthy = f"don_ok{index}".encode()
            await producer.send_and_wait(topic, value=good(healthy.decode()), key=healthy, headers=ct, partition=0)
        # A record written before ADR 0001's revision (routing header `ce_type`) is still handled, not dead-lettered.
        await producer.send_and_wait(topic, value=good("don_legacy"), key=b"don_legacy", partition=0,
                                     headers=[*ct, (LEGACY_TYPE_HEADER, DonorProfileUpdated.event_type.encode())])
    finally:
        await producer.stop()

    consumer = procs.start("consume")
    await procs.wait_line(consumer, "consuming")
    expected = {f"don_ok{i}" for i in range(len(poison))} | {"don_legacy"}

    async def all_healthy_handled() -> dict[str, int] | None:
        done = {d["_id"]: d["applied"] async for d in procs.db["effects"].find()}
        return done if expected <= set(done) else None

    effects = await eventually(all_healthy_handled, within=COLD_START, what="every healthy record behind the poison")
    assert effects == dict.fromkeys(expected, 1), "only the healthy records had effects, each once"

    dlq = f"{topic}.publisher.dlq"
    letters = await eventually(lambda: _at_least(ksbb("dlq", "list", dlq, bootstrap=bootstrap), len(poison)),
                               within=COLD_START, what="every poison record in `ksbb dlq list`")
    assert [r["headers"]["ksbb-dlq-reason"] for r in letters] == [reason for reason, *_ in poison]
    assert all(r["headers"]["ksbb-dlq-partition"] == "0" and r["headers"]["ksbb-dlq-error"] for r in letters)
    bad_key = letters[0]
    assert bad_key["key"] is None and bad_key["key_base64"] == "//4tbm90LXV0Zjg=", "the key is kept byte for byte"
    assert "key is not valid UTF-8" in bad_key["headers"]["ksbb-dlq-error"]
    assert "traceparent" in letters[1]["headers"]["ksbb-dlq-error"]

    too_large = letters[-1]
    assert too_large["headers"]["content-type"] == CONTENT_TYPE, "the original headers stay on the dead letter"
    assert too_large["headers"]["ksbb-dlq-value-truncated"] == "true"
    assert int(too_large["headers"]["ksbb-dlq-payload-bytes"]) == len(poison[-1][2] or b"")
    assert len(too_large["value"]) < 64 * 1024
    shown = ksbb("dlq", "show", dlq, "--offset", str(too_large["offset"]), "--mongodb", procs.infra.mongodb_url,
                 bootstrap=bootstrap)[0]
    assert shown["payload"]["value"] == (poison[-1][2] or b"").decode(), "the operator gets the full payload"
    assert shown["payload"]["headers"]["traceparent"] == huge_headers[1][1].decode()
    consumer.terminate()
    await procs.wait_exit(consumer)


async def _at_least(records: list[dict[str, Any]], n: int) -> list[dict[str, Any]] | None:
    return records if len(records) >= n else None
