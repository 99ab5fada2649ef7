"""Kafka helpers for tests: read what was published, inject events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from ksbb_contracts import CONTENT_TYPE, CloudEvent, Event

from ksbb_kit.ids import new_id
from ksbb_kit.kafka import KafkaRecordPublisher


class TopicReader:
    """Collects every record of some topics from the beginning, for assertions."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
            group_id=None, metadata_max_age_ms=1000,
        )
        self.records: list[Any] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._consumer.stop()

    async def _collect(self) -> None:
        async for record in self._consumer:
            self.records.append(record)

    def envelopes(self, event_type: str | None = None) -> list[CloudEvent]:
        """The CloudEvents read so far (tombstones skipped), optionally of one type."""
        result = [CloudEvent.from_bytes(r.value) for r in self.records if r.value is not None]
        return [e for e in result if event_type is None or e.type == event_type]

    async def wait_for(self, predicate: Callable[[list[CloudEvent]], bool], timeout: float = 30.0) -> list[CloudEvent]:
        """Wait until the envelopes read satisfy a predicate; AssertionError on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            envelopes = self.envelopes()
            if predicate(envelopes):
                return envelopes
            if asyncio.get_running_loop().time() > deadline:
                types = [e.type for e in envelopes]
                raise AssertionError(f"condition not met within {timeout}s; saw {types}")
            await asyncio.sleep(0.1)


async def publish_events(
    bootstrap: str, prefix: str, events: list[Event], *, source: str = "/ksbb/test",
    event_ids: list[str] | None = None,
) -> list[CloudEvent]:
    """Publish events to their topics (as their owning service would) and return the envelopes."""
    publisher = KafkaRecordPublisher(bootstrap, client_id="ksbb-test")
    await publisher.start()
    envelopes = []
    try:
        for index, event in enumerate(events):
            envelope = CloudEvent(
                id=event_ids[index] if event_ids else new_id("evt"), source=source, type=event.event_type,
                subject=event.subject, time=datetime.now(UTC), data=event.model_dump(mode="json"),
            )
            await publisher.send(prefix + event.topic.name, envelope.subject, envelope.to_bytes(),
                                 {"content-type": CONTENT_TYPE})
            envelopes.append(envelope)
    finally:
        await publisher.stop()
    return envelopes
