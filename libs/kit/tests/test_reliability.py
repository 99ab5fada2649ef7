"""The kit proven on the real broker and database: crashes, poison messages, restarts, replay."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

import pytest
from ksbb_contracts import CONTENT_TYPE, CloudEvent
from ksbb_contracts.events import DonorProfileUpdated
from ksbb_contracts.topics import DONORS, all_topics_with_dlqs
from ksbb_kit.cli import read_dead_letters, replay_dead_letters
from ksbb_kit.clock import SystemClock
from ksbb_kit.kafka import KafkaRecordPublisher, ensure_topics
from ksbb_kit.outbox import MARKERS, new_document, outbox_entries
from ksbb_kit.testing.kafka import TopicReader, publish_events
from ksbb_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration
TYPE = DonorProfileUpdated.event_type
COLD_START = 60.0  # seconds: the relay and consumers run in child processes that start cold

async def effects(procs) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {d["_id"]: d["applied"] async for d in procs.db["effects"].find()}


async def test_producer_killed_between_write_and_publish_loses_nothing_and_applies_once(kit_processes) -> None:
    procs = kit_processes
    await ensure_topics(procs.infra.kafka_bootstrap, all_topics_with_dlqs(), procs.namespace)
    producer = procs.start("produce", "40")
    await procs.wait_line(producer, "written")
    producer.send_signal(signal.SIGKILL)  # after the write, before any publish
    producer.wait()
    assert await procs.db["aggregates"].count_documents({"_outbox_pending": True}) == 40
    assert await procs.db[MARKERS].count_documents({}) == 40, "each write was announced by a marker first"

    # The relay dies right after its 15th publish, before it could mark anything sent.
    dying = procs.start("relay", KILL_AFTER_SENDS="15", KSBB_OUTBOX_LEASE_SECONDS="2")
    assert await procs.wait_exit(dying) == -signal.SIGKILL
    assert await procs.db[MARKERS].count_documents({"lease": {"$exists": True}}) >= 1, "it died holding leases"
    await asyncio.sleep(2.5)  # the dead relay's lease on its document runs out
    finishing = procs.start("relay")
    assert await procs.wait_exit(finishing) == 0
    assert await procs.db["aggregates"].count_documents({"_outbox_pending": True}) == 0

    async with TopicReader(procs.infra.kafka_bootstrap, [procs.namespace + DONORS.name]) as reader:
        seen = await reader.wait_for(lambda es: len({e.id for e in es}) >= 40)
    ids = [e.id for e in seen]
    assert len(set(ids)) == 40, "every written event was published"
    assert len(ids) > 40, "the killed relay's sends were republished (at-least-once), proving the crash point"

    consumer = procs.start("consume")
    await procs.wait_line(consumer, "consuming")
    counts = await eventually(lambda: _when_complete(procs, 40), within=COLD_START, what="all 40 effects")
    assert set(counts.values()) == {1}, "each event id applied exactly once despite duplicates on the topic"
    consumer.send_signal(signal.SIGTERM)
    await procs.wait_exit(consumer)


async def test_producer_killed_between_marker_and_write_loses_nothing_and_leaves_no_marker(kit_processes) -> None:
    procs = kit_processes
    await ensure_topics(procs.infra.kafka_bootstrap, all_topics_with_dlqs(), procs.namespace)
    producer = procs.start("produce-half", "20")  # markers for 20 aggregates, only 10 of them written
    await procs.wait_line(producer, "written")
    producer.send_signal(signal.SIGKILL)
    producer.wait()
    markers, aggregates = procs.db[MARKERS], procs.db["aggregates"]
    assert await markers.count_documents({}) == 20
    assert await aggregates.count_documents({"_outbox_pending": True}) == 10
    written = {f"don_{i:04d}" for i in range(10)}

    first = procs.start("relay", KSBB_OUTBOX_MARKER_GRACE_SECONDS="60")
    assert await procs.wait_exit(first) == 0
    assert await aggregates.count_documents({"_outbox_pending": True}) == 0
    assert await markers.count_documents({}) == 20, "young markers stay: the write they announce may still land"

    # A slow write lands after that pass, announced only by its (still young) marker: it is published too.
    late = DonorProfileUpdated(donor_id="don_0015", kind="person", version=1)
    entries = outbox_entries([late], source="/ksbb/test", clock=SystemClock())
    await aggregates.insert_one(new_document({"_id": "don_0015", "version": 1}, entries))
    await asyncio.sleep(1.5)
    second = procs.start("relay", KSBB_OUTBOX_MARKER_GRACE_SECONDS="1")
    assert await procs.wait_exit(second) == 0
    assert await aggregates.count_documents({"_outbox_pending": True}) == 0
    assert await markers.count_documents({}) == 0, "markers older than the grace with nothing pending are dropped"

    async with TopicReader(procs.infra.kafka_bootstrap, [procs.namespace + DONORS.name]) as reader:
        seen = await reader.wait_for(lambda es: {e.subject for e in es} >= written | {"don_0015"})
    assert {e.subject for e in seen} == written | {"don_0015"}, "nothing unwritten was published"


async def _when_complete(procs, expected: int):  # type: ignore[no-untyped-def]
    counts = await effects(procs)
    return counts if len(counts) >= expected else None


async def test_consumer_killed_between_effect_and_commit_changes_nothing_on_restart(kit_processes) -> None:
    procs = kit_processes
    await ensure_topics(procs.infra.kafka_bootstrap, all_topics_with_dlqs(), procs.namespace)
    events = [DonorProfileUpdated(donor_id=f"don_{i:03d}", kind="person", version=1) for i in range(20)]
    envelopes = await publish_events(procs.infra.kafka_bootstrap, procs.namespace, events)

    victim = procs.start("consume", KILL_AFTER_EFFECT="don_010")
    assert await procs.wait_exit(victim) == -signal.SIGKILL
    assert (await effects(procs)).get("don_010") == 1, "the effect was written before the crash"

    survivor = procs.start("consume")
    await procs.wait_line(survivor, "consuming")
    await eventually(lambda: _invoked_again(procs, envelopes[10].id), within=COLD_START,
                     what="redelivery of the uncommitted event")
    counts = await eventually(lambda: _when_complete(procs, 20), within=COLD_START, what="all 20 effects")
    assert counts == {e.donor_id: 1 for e in events}, "the redelivery changed nothing"
    survivor.send_signal(signal.SIGTERM)
    await procs.wait_exit(survivor)


async def test_poison_and_failing_messages_go_to_dlq_and_the_partition_moves_on(kit_processes) -> None:
    procs = kit_processes
    bootstrap = procs.infra.kafka_bootstrap
    await ensure_topics(bootstrap, all_topics_with_dlqs(), procs.namespace)
    topic = procs.namespace + DONORS.name
    publisher = KafkaRecordPublisher(bootstrap, client_id="poison-test")
    await publisher.start()
    try:
        # Same key, so same partition: the poison record sits in front of the good ones.
        await publisher.send(topic, "don_same", b"{not json", {"content-type": CONTENT_TYPE})
        bad_schema = CloudEvent(id="evt_bad", source="/t", type=TYPE, subject="don_same", time=datetime.now(UTC),
                                data={"donor_id": "don_same", "kind": "not-a-kind", "version": 1})
        await publisher.send(topic, "don_same", bad_schema.to_bytes(), {"content-type": CONTENT_TYPE})
    finally:
        await publisher.stop()
    await publish_events(bootstrap, procs.namespace, [
        DonorProfileUpdated(donor_id="don_same", kind="person", version=1),
        DonorProfileUpdated(donor_id="don_fail", kind="person", version=1),
    ])
    consumer = procs.start("consume", ALWAYS_FAIL="don_fail")
    await procs.wait_line(consumer, "consuming")
    await eventually(lambda: _when_complete(procs, 1), within=COLD_START, what="the good record's effect")
    dlq = f"{topic}.publisher.dlq"
    letters = await eventually(lambda: _at_least(read_dead_letters(bootstrap, dlq), 3), within=COLD_START,
                               what="three dead letters")
    reasons = sorted(r["headers"]["ksbb-dlq-reason"] for r in letters)
    assert reasons == ["handler", "malformed", "schema"]
    failing = next(r for r in letters if r["headers"]["ksbb-dlq-reason"] == "handler")
    assert failing["headers"]["ksbb-dlq-attempts"] == "3"
    assert "always fails" in failing["headers"]["ksbb-dlq-error"]
    assert failing["headers"]["content-type"] == CONTENT_TYPE, "original headers are kept"
    assert (await effects(procs)) == {"don_same": 1}
    consumer.send_signal(signal.SIGTERM)
    await procs.wait_exit(consumer)

    # After the bug is fixed, an operator replays the failed message; it is processed.
    replayed = await replay_dead_letters(bootstrap, dlq, {int(failing["offset"])})
    assert replayed == 1
    fixed = procs.start("consume")
    await procs.wait_line(fixed, "consuming")
    replayed_effects = await eventually(lambda: _when_complete(procs, 2), within=COLD_START, what="the replayed effect")
    assert replayed_effects == {"don_same": 1, "don_fail": 1}
    fixed.send_signal(signal.SIGTERM)
    await procs.wait_exit(fixed)


async def _invoked_again(procs, event_id: str) -> bool:  # type: ignore[no-untyped-def]
    doc = await procs.db["invocations"].find_one({"_id": event_id})
    return doc is not None and doc["n"] >= 2


async def _at_least(coro, n: int):  # type: ignore[no-untyped-def]
    records = await coro
    return records if len(records) >= n else None


async def test_restarted_consumer_resumes_from_committed_offsets(kit_processes) -> None:
    procs = kit_processes
    bootstrap = procs.infra.kafka_bootstrap
    await ensure_topics(bootstrap, all_topics_with_dlqs(), procs.namespace)
    first = [DonorProfileUpdated(donor_id=f"don_a{i:03d}", kind="person", version=1) for i in range(30)]
    await publish_events(bootstrap, procs.namespace, first)
    consumer = procs.start("consume")
    await procs.wait_line(consumer, "consuming")
    await eventually(lambda: _when_complete(procs, 30), within=COLD_START, what="all 30 effects")
    consumer.send_signal(signal.SIGTERM)
    assert await procs.wait_exit(consumer) == 0

    second = [DonorProfileUpdated(donor_id=f"don_b{i:03d}", kind="person", version=1) for i in range(30)]
    await publish_events(bootstrap, procs.namespace, second)
    restarted = procs.start("consume")
    await procs.wait_line(restarted, "consuming")
    counts = await eventually(lambda: _when_complete(procs, 60), within=COLD_START, what="all 60 effects")
    assert set(counts.values()) == {1} and len(counts) == 60
    invocations = [d["n"] async for d in procs.db["invocations"].find()]
    assert len(invocations) == 60 and set(invocations) == {1}, "nothing before the committed offset was re-read"
    restarted.send_signal(signal.SIGTERM)
    await procs.wait_exit(restarted)
