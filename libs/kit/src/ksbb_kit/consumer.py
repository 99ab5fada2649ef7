"""Reliable event consumption: routing, bounded retries, dead letters, idempotent effects.

Offsets are committed only after a handler returned (FastStream `NACK_ON_ERROR`: an exception rewinds
the partition), so a crash between an effect and the commit redelivers the event; handlers make their
effects idempotent with `apply_once` or version checks, so the redelivery changes nothing.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ksbb_contracts import EVENT_TYPES, CloudEvent, Event, Topic
from ksbb_contracts.topics import TOPICS
from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ksbb_kit.metrics import DEAD_LETTERS, HANDLER_OUTCOMES
from ksbb_kit.outbox import RecordPublisher
from ksbb_kit.tracing import child_of, request_id_of, set_request_id, set_traceparent

log = logging.getLogger(__name__)
EventHandler = Callable[[Any, CloudEvent], Awaitable[None]]
TombstoneHandler = Callable[[str], Awaitable[None]]
APPLIED = "_applied"


@dataclass(frozen=True)
class ConsumedRecord:
    """One Kafka record as the dispatcher sees it."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)


class EventRouter:
    """Maps event types (and tombstones of compacted topics) to one service's handlers."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.handlers: dict[str, EventHandler] = {}
        self.tombstone_handlers: dict[str, TombstoneHandler] = {}

    def on(self, *events: type[Event]) -> Callable[[EventHandler], EventHandler]:
        """Register a handler `async (event, envelope) -> None` for one or more event types."""

        def register(handler: EventHandler) -> EventHandler:
            for event in events:
                self.handlers[event.event_type] = handler
            return handler

        return register

    def on_tombstone(self, topic: Topic) -> Callable[[TombstoneHandler], TombstoneHandler]:
        """Register a handler `async (key) -> None` for erasures on a compacted topic."""

        def register(handler: TombstoneHandler) -> TombstoneHandler:
            self.tombstone_handlers[topic.name] = handler
            return handler

        return register

    def topics(self) -> list[Topic]:
        """Every topic this router needs to read."""
        names = {EVENT_TYPES[t].topic.name for t in self.handlers} | set(self.tombstone_handlers)
        return [TOPICS[name] for name in sorted(names)]


class EventDispatcher:
    """Parses, routes and retries one record; poison and failing records go to the dead-letter topic."""

    def __init__(
        self,
        router: EventRouter,
        dead_letters: RecordPublisher,
        *,
        group: str,
        topic_prefix: str = "",
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._router = router
        self._dead_letters = dead_letters
        self._group = router.service
        self._physical_group = group
        self._prefix = topic_prefix
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    async def handle(self, record: ConsumedRecord) -> str:
        """Process one record; returns the outcome (handled, ignored, dead_lettered)."""
        logical = record.topic.removeprefix(self._prefix)
        set_traceparent(child_of(record.headers.get("traceparent")))
        set_request_id(None)
        if record.value is None:
            handler = self._router.tombstone_handlers.get(logical)
            if handler is None or record.key is None:
                return self._count("tombstone", "ignored")
            return await self._run(record, "tombstone", lambda: handler(record.key or ""))
        try:
            envelope = CloudEvent.from_bytes(record.value)
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(record, "malformed", f"not a CloudEvents envelope: {exc}", 1)
            return self._count("malformed", "dead_lettered")
        set_request_id(request_id_of(envelope.model_extra))  # logs and follow-up events keep the request id
        handler_for_type = self._router.handlers.get(envelope.type)
        if handler_for_type is None:
            return self._count(envelope.type, "ignored")
        try:
            event = EVENT_TYPES[envelope.type].model_validate(envelope.data)
        except ValidationError as exc:
            await self._dead_letter(record, "schema", f"schema violation: {exc}", 1)
            return self._count(envelope.type, "dead_lettered")
        return await self._run(record, envelope.type, lambda: handler_for_type(event, envelope))

    async def _run(self, record: ConsumedRecord, label: str, call: Callable[[], Awaitable[None]]) -> str:
        for attempt in range(1, self._max_attempts + 1):
            try:
                await call()
                return self._count(label, "handled")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt == self._max_attempts:
                    log.exception("handler failed %d times, dead-lettering", attempt)
                    error = "".join(traceback.format_exception_only(exc)).strip()
                    await self._dead_letter(record, "handler", error, attempt)
                    return self._count(label, "dead_lettered")
                log.warning("handler attempt %d failed: %s", attempt, exc)
                await self._sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _dead_letter(self, record: ConsumedRecord, reason: str, error: str, attempts: int) -> None:
        logical = record.topic.removeprefix(self._prefix)
        dlq = f"{self._prefix}{logical}.{self._group}.dlq"
        headers = {
            **record.headers,
            "ksbb-dlq-reason": reason,
            "ksbb-dlq-error": error[:2000],
            "ksbb-dlq-attempts": str(attempts),
            "ksbb-dlq-topic": record.topic,
            "ksbb-dlq-partition": str(record.partition),
            "ksbb-dlq-offset": str(record.offset),
            "ksbb-dlq-group": self._physical_group,
        }
        await self._dead_letters.send(dlq, record.key, record.value, headers)
        DEAD_LETTERS.labels(topic=logical, reason=reason).inc()

    @staticmethod
    def _count(label: str, outcome: str) -> str:
        HANDLER_OUTCOMES.labels(event_type=label, outcome=outcome).inc()
        return outcome


async def apply_once(
    collection: AsyncCollection[dict[str, Any]],
    filter_: dict[str, Any],
    update: dict[str, Any],
    event_id: str,
    *,
    upsert: bool = False,
    kept: int = 500,
) -> bool:
    """Apply an update unless the document already recorded this event id — in the same single write.

    Returns True when the effect was applied now, False for a redelivery. The last `kept` ids are
    remembered per document; handlers that can see older redeliveries also check aggregate versions.
    """
    guarded = {**filter_, APPLIED: {"$ne": event_id}}
    merged = copy.deepcopy(update)
    merged.setdefault("$push", {})[APPLIED] = {"$each": [event_id], "$slice": -kept}
    try:
        result = await collection.update_one(guarded, merged, upsert=upsert)
    except DuplicateKeyError:
        return False  # the document exists and has already applied this event
    return result.modified_count > 0 or result.upserted_id is not None
