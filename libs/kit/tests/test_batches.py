"""Batch consumption on the real broker: runs of records in one call, each record's guarantees kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from ksbb_contracts import CONTENT_TYPE, CloudEvent
from ksbb_contracts.events import DonorProfileUpdated
from ksbb_contracts.topics import DONORS
from ksbb_kit.cli import read_dead_letters
from ksbb_kit.consumer import EventRouter
from ksbb_kit.kafka import KafkaRecordPublisher, ensure_topics
from ksbb_kit.runtime import ServiceRuntime
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.kafka import publish_events
from ksbb_kit.testing.service import running
from ksbb_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


class BatchSettings(KitSettings):
    """A consumer of the donors topic (the publisher's group name)."""

    service_name: ClassVar[str] = "publisher"


class Effects:
    """Per donor, how often an effect was applied, and the size of every batch call."""

    def __init__(self) -> None:
        self.applied: dict[str, int] = {}
        self.batch_sizes: list[int] = []
        self.alone: list[str] = []

    def apply(self, event: DonorProfileUpdated) -> None:
        if event.donor_id == "don_fail":
            raise RuntimeError("this effect always fails for don_fail")
        self.applied[event.donor_id] = self.applied.get(event.donor_id, 0) + 1


async def test_batches_apply_in_one_call_and_a_poisoned_record_goes_alone_to_the_dlq(
    kit_env: dict[str, Any], namespace: str
) -> None:
    settings = BatchSettings(**kit_env, handler_max_attempts=2)
    await ensure_topics(settings.kafka_bootstrap, [DONORS], namespace)
    effects = Effects()
    router = EventRouter("publisher")

    @router.on(DonorProfileUpdated)
    async def one(event: DonorProfileUpdated, _: CloudEvent) -> None:
        effects.alone.append(event.donor_id)
        effects.apply(event)

    async def batch(items: Sequence[tuple[Any, CloudEvent]]) -> None:
        effects.batch_sizes.append(len(items))
        for event, _ in items:
            effects.apply(event)  # raises for don_fail: the whole run then goes record by record

    # Everything is on the topic before the consumer starts, so the first fetch returns many records.
    good = [DonorProfileUpdated(donor_id=f"don_{i:02d}", kind="person", version=1) for i in range(40)]
    await publish_events(settings.kafka_bootstrap, namespace, good[:20])
    producer = KafkaRecordPublisher(settings.kafka_bootstrap, client_id="batch-test")
    await producer.start()
    try:
        await producer.send(namespace + DONORS.name, "don_poison", b"{not json", {"content-type": CONTENT_TYPE})
    finally:
        await producer.stop()
    await publish_events(settings.kafka_bootstrap, namespace, good[20:])

    runtime = ServiceRuntime(settings, title="batch probe", description="batch consumption probe")
    runtime.subscribe(router, batch=batch, batch_size=100)
    async with running(runtime.create_app()):
        await eventually(lambda: len(effects.applied) == 40, within=60, what="every good record's effect")
        assert max(effects.batch_sizes) > 1, "records arrived in batches"
        assert effects.alone == [], "no record needed the single path"
        assert set(effects.applied.values()) == {1}

        await publish_events(settings.kafka_bootstrap, namespace, [
            DonorProfileUpdated(donor_id="don_fail", kind="person", version=1),
            DonorProfileUpdated(donor_id="don_after", kind="person", version=1),
        ])
        await eventually(lambda: "don_after" in effects.applied, within=60, what="the record after the failing one")

    dlq = f"{namespace}{DONORS.name}.publisher.dlq"
    letters = await eventually(lambda: _at_least(read_dead_letters(settings.kafka_bootstrap, dlq), 2), within=60,
                               what="two dead letters")
    assert sorted(letter["headers"]["ksbb-dlq-reason"] for letter in letters) == ["handler", "malformed"]
    assert "don_fail" in effects.alone, "a failing batch is handled record by record"
    assert effects.applied.get("don_fail") is None and effects.applied["don_after"] >= 1


async def _at_least(coro: Any, n: int) -> Any:
    records = await coro
    return records if len(records) >= n else None
