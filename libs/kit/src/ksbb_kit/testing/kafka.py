"""Kafka helpers for tests: read what was published, inject events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from ksbb_contracts import CONTENT_TYPE, CloudEvent, Event

from ksbb_kit.kafka import KafkaRecordPublisher
from ksbb_kit.testing.factories import envelope
from ksbb_kit.testing.waiting import eventually


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
        """Wait until the envelopes read satisfy a predicate; AssertionError (naming what was seen) on timeout."""

        def matching() -> tuple[list[CloudEvent]] | None:
            envelopes = self.envelopes()
            return (envelopes,) if predicate(envelopes) else None  # a tuple: truthy even for no envelopes

        try:
            (envelopes,) = await eventually(matching, within=timeout, what="records on the topics")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; saw {[e.type for e in self.envelopes()]}") from None
        return list(envelopes)


async def publish_events(
    bootstrap: str, prefix: str, events: list[Event], *, source: str = "/ksbb/test",
    event_ids: list[str] | None = None,
) -> list[CloudEvent]:
    """Publish events to their topics (as their owning service would) and return the envelopes."""
    publisher = KafkaRecordPublisher(bootstrap, client_id="ksbb-test")
    await publisher.start()
    sent = []
    try:
        for index, event in enumerate(events):
            wrapped = envelope(event, event_id=event_ids[index] if event_ids else None, source=source,
                               time=datetime.now(UTC))
            await publisher.send(prefix + event.topic.name, wrapped.subject, wrapped.to_bytes(),
                                 {"content-type": CONTENT_TYPE})
            sent.append(wrapped)
    finally:
        await publisher.stop()
    return sent
