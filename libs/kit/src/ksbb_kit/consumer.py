"""Reliable event consumption: routing, bounded retries, dead letters, idempotent effects.

Offsets are committed only after a handler returned (FastStream `NACK_ON_ERROR`: an exception rewinds
the partition), so a crash between an effect and the commit redelivers the event; handlers make their
effects idempotent with `apply_once` or version checks, so the redelivery changes nothing.

No record can stop a partition: whatever cannot be read (key or headers not UTF-8, a value that is not
JSON, not a CloudEvents envelope or violates its type's schema, a tombstone nobody handles), whatever
type the service does not handle (unless the contracts list it as ignored by this service, see
`ksbb_contracts.topics.IGNORED_EVENT_TYPES`) and whatever keeps failing its handler goes to the
consumer group's dead-letter topic with the reason, and the partition moves on.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from ksbb_contracts import EVENT_TYPES, CloudEvent, Event, Topic
from ksbb_contracts.topics import TOPICS, ignores_event_type
from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ksbb_kit.calm import RepeatingFailure
from ksbb_kit.clock import Clock, SystemClock
from ksbb_kit.deadletters import DeadLetter, DeadLetterPayloads, HeaderValue, shrunk
from ksbb_kit.metrics import DEAD_LETTERS, HANDLER_OUTCOMES
from ksbb_kit.outbox import RecordPublisher
from ksbb_kit.tracing import child_of, request_id_of, set_request_id, set_traceparent

log = logging.getLogger(__name__)
EventHandler = Callable[[Any, CloudEvent], Awaitable[None]]
TombstoneHandler = Callable[[str], Awaitable[None]]
APPLIED = "_applied"
#: Default upper bound of a dead letter's size: below the producer's 1 MiB maximum request and the
#: broker's default `message.max.bytes`, leaving room for the batch framing.
DEAD_LETTER_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class ConsumedRecord:
    """One Kafka record as the dispatcher sees it: key and headers as text, plus what could not be read."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    #: The key as received, kept when it is not UTF-8 (so the dead letter carries it unchanged).
    raw_key: bytes | None = None
    #: Header values as received, kept when one is not UTF-8.
    raw_headers: dict[str, bytes] | None = None
    #: Why the key or a header cannot be read; such a record is dead-lettered, never handled.
    unreadable: str | None = None

    @classmethod
    def received(
        cls, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: Iterable[tuple[str, bytes | None]] = (),
    ) -> ConsumedRecord:
        """A record from the raw bytes Kafka delivered; never raises, whatever the bytes are."""
        problems: list[str] = []
        text_key: str | None = None
        if key is not None:
            try:
                text_key = key.decode("utf-8")
            except UnicodeDecodeError:
                problems.append("the record key is not valid UTF-8")
        text_headers: dict[str, str] = {}
        raw_headers: dict[str, bytes] = {}
        bad_header = False
        for name, raw in headers:
            raw_headers[name] = raw or b""
            try:
                text_headers[name] = (raw or b"").decode("utf-8")
            except UnicodeDecodeError:
                bad_header = True
                problems.append(f"header {name!r} is not valid UTF-8")
                text_headers[name] = (raw or b"").decode("utf-8", errors="replace")
        return cls(
            topic=topic, partition=partition, offset=offset, key=text_key, value=value, headers=text_headers,
            raw_key=key if key is not None and text_key is None else None,
            raw_headers=raw_headers if bad_header else None,
            unreadable="; ".join(problems) or None,
        )

    def original_key(self) -> str | bytes | None:
        """The key exactly as received."""
        return self.raw_key if self.raw_key is not None else self.key

    def original_headers(self) -> dict[str, HeaderValue]:
        """The headers exactly as received (bytes where one was not UTF-8)."""
        return dict(self.raw_headers) if self.raw_headers is not None else dict(self.headers)


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

    def undecided_types(self) -> list[str]:
        """Contract types on this router's topics it neither handles nor ignores by the contracts' rule.

        Records of these types would be dead-lettered; a service lists none (a start-up warning and a test
        say so when a new event type is added to a topic without a decision in every consumer).
        """
        names = {topic.name for topic in self.topics()}
        return sorted(
            event_type for event_type, model in EVENT_TYPES.items()
            if model.topic.name in names and event_type not in self.handlers
            and not ignores_event_type(self.service, event_type)
        )


class _Rejected(Exception):
    """A record that cannot be handled: dead-letter it with this reason."""

    def __init__(self, reason: str, error: str, label: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error
        self.label = label


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
        payloads: DeadLetterPayloads | None = None,
        max_dead_letter_bytes: int = DEAD_LETTER_MAX_BYTES,
        clock: Clock | None = None,
    ) -> None:
        self._router = router
        self._dead_letters = dead_letters
        self._group = router.service
        self._physical_group = group
        self._prefix = topic_prefix
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._payloads = payloads
        self._max_dead_letter_bytes = max_dead_letter_bytes
        self._clock = clock or SystemClock()
        self._dead_letter_outage = RepeatingFailure(log, "cannot write to the dead-letter topic")

    async def handle(self, record: ConsumedRecord) -> str:
        """Process one record; returns the outcome (handled, ignored, dead_lettered)."""
        set_traceparent(child_of(record.headers.get("traceparent")))
        set_request_id(None)
        try:
            label, call = self._route(record)
        except _Rejected as rejected:
            await self._dead_letter(record, rejected.reason, rejected.error, 1)
            return self._count(rejected.label, "dead_lettered")
        except Exception as exc:  # a record that trips the decoding itself must not stop the partition either
            log.exception("could not route a record; dead-lettering it")
            await self._dead_letter(record, "malformed", _describe(exc), 1)
            return self._count("malformed", "dead_lettered")
        if call is None:
            return self._count(label, "ignored")
        return await self._run(record, label, call)

    def _route(self, record: ConsumedRecord) -> tuple[str, Callable[[], Awaitable[None]] | None]:
        """The label and the handler call for a record; raises _Rejected for what must be dead-lettered."""
        if record.unreadable is not None:
            raise _Rejected("undecodable", record.unreadable, "undecodable")
        if record.value is None:
            return self._route_tombstone(record)
        try:
            envelope = CloudEvent.from_bytes(record.value)
        except ValidationError as exc:
            not_json = any(error.get("type") == "json_invalid" for error in exc.errors())
            if not_json:
                raise _Rejected("malformed", f"the value is not JSON: {_first_error(exc)}", "malformed") from None
            raise _Rejected("envelope", f"not a CloudEvents envelope: {exc}", "malformed") from None
        except ValueError as exc:
            raise _Rejected("malformed", f"the value is not JSON: {exc}", "malformed") from None
        set_request_id(request_id_of(envelope.model_extra))  # logs and follow-up events keep the request id
        handler = self._router.handlers.get(envelope.type)
        if handler is None:
            if ignores_event_type(self._router.service, envelope.type):
                return envelope.type, None
            if envelope.type in EVENT_TYPES:
                raise _Rejected("unhandled_type", f"{self._router.service} has no handler for {envelope.type} "
                                "and the contracts do not list it as ignored", envelope.type)
            raise _Rejected("unknown_type", f"{envelope.type} is not an event type of the contracts", "unknown")
        try:
            event = EVENT_TYPES[envelope.type].model_validate(envelope.data)
        except ValidationError as exc:
            raise _Rejected("schema", f"schema violation: {exc}", envelope.type) from None
        return envelope.type, lambda: handler(event, envelope)

    def _route_tombstone(self, record: ConsumedRecord) -> tuple[str, Callable[[], Awaitable[None]] | None]:
        logical = record.topic.removeprefix(self._prefix)
        handler = self._router.tombstone_handlers.get(logical)
        key = record.key
        if handler is None or not key:
            why = "a tombstone without a key" if not key else f"{self._router.service} handles no erasures on {logical}"
            raise _Rejected("unexpected_tombstone", why, "tombstone")
        return "tombstone", lambda: handler(key)

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
                    await self._dead_letter(record, "handler", _describe(exc), attempt)
                    return self._count(label, "dead_lettered")
                log.warning("handler attempt %d failed: %s", attempt, exc)
                await self._sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _dead_letter(self, record: ConsumedRecord, reason: str, error: str, attempts: int) -> None:
        """Send the record to the group's dead-letter topic; while that fails, wait and let it be redelivered."""
        logical = record.topic.removeprefix(self._prefix)
        letter = DeadLetter(
            topic=f"{self._prefix}{logical}.{self._group}.dlq",
            key=record.original_key(),
            value=record.value,
            headers={
                **record.original_headers(),
                "ksbb-dlq-reason": reason,
                "ksbb-dlq-error": error[:2000],
                "ksbb-dlq-attempts": str(attempts),
                "ksbb-dlq-topic": record.topic,
                "ksbb-dlq-partition": str(record.partition),
                "ksbb-dlq-offset": str(record.offset),
                "ksbb-dlq-group": self._physical_group,
            },
        )
        try:
            await self._send(record, letter)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Nothing is committed: the record comes back, and the pause keeps a broker outage from spinning.
            self._dead_letter_outage.failed(exc)
            await self._sleep(min(30.0, max(self._backoff, 0.5) * 2 ** min(self._dead_letter_outage.streak, 6)))
            raise
        self._dead_letter_outage.recovered()
        log.warning("dead-lettered %s[%d]@%d (%s): %s", record.topic, record.partition, record.offset, reason,
                    error[:300])
        DEAD_LETTERS.labels(topic=logical, reason=reason).inc()

    async def _send(self, record: ConsumedRecord, letter: DeadLetter) -> None:
        if letter.size() > self._max_dead_letter_bytes:
            letter = await self._set_aside(record, letter, self._max_dead_letter_bytes)
        try:
            await self._dead_letters.send(letter.topic, letter.key, letter.value, letter.headers)
        except (MessageSizeTooLargeError, RecordTooLargeError):
            if "ksbb-dlq-payload-ref" in letter.headers:
                raise
            # The broker (or topic) allows less than configured: keep the payload aside and send the stub.
            letter = await self._set_aside(record, letter, self._max_dead_letter_bytes // 4)
            await self._dead_letters.send(letter.topic, letter.key, letter.value, letter.headers)

    async def _set_aside(self, record: ConsumedRecord, letter: DeadLetter, max_bytes: int) -> DeadLetter:
        """Store the full record in the service's database and shrink the dead letter to a reference."""
        payload_id = f"{record.topic}/{record.partition}/{record.offset}"
        if self._payloads is None:
            log.error("dead letter of %s is too large and no payload store is configured; truncating it", payload_id)
            return shrunk(letter, "unavailable", max_bytes)
        reference = await self._payloads.keep(
            payload_id, letter, original=record.original_headers(), stored_at=self._clock.now(),
        )
        return shrunk(letter, reference, max_bytes)

    @staticmethod
    def _count(label: str, outcome: str) -> str:
        HANDLER_OUTCOMES.labels(event_type=label, outcome=outcome).inc()
        return outcome


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    return str(errors[0].get("msg")) if errors else str(exc)


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
