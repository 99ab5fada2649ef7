"""Following a topic after the fact: a second look at records once they are old enough to be settled.

A service that owns a topic can read it back under its own follower group (not its consumer group), each
record no sooner than `delay` after Kafka stamped it. The pledges service uses this to notice pledges its
database lost after their events were already out: by the time the follower looks, every write that was
acknowledged before the record was stamped has long been made durable (or is lost for good), so what the
follower finds missing is truly missing.

A follower never dead-letters: what it cannot read, the topic's consumers dead-letter. It isolates items
like every job: a handler that raises for one event is retried a few times, then the event is marked stuck
(`ksbb_kit.jobs.StuckItems`) and the follower moves on; a database that is unreachable is waited for
(logged calmly), because then every item would fail and none is at fault.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ksbb_contracts import CloudEvent, Event
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from ksbb_kit.calm import RepeatingFailure

log = logging.getLogger("ksbb.follower")

#: What a follower hands its handler: the decoded events of one batch, in order; the handler answers with
#: the items that failed (item id -> error), empty when all went well.
FollowedHandler = Callable[[Sequence[tuple[Event, CloudEvent]]], Awaitable[dict[str, BaseException]]]
#: Errors that say the database is unreachable, not that an item is bad: waited out, never marked stuck.
OUTAGES: tuple[type[BaseException], ...] = (ConnectionFailure, ServerSelectionTimeoutError)
#: Attempts at an item whose handler raised before it is marked stuck and skipped.
MAX_ATTEMPTS = 3


class StuckMarks(Protocol):
    """Where an item given up on is recorded (`ksbb_kit.jobs.StuckItems`)."""

    async def mark(self, job: str, item_id: str, error: str) -> None:
        """Record an item that raised."""
        ...


@dataclass(frozen=True)
class FollowedRecord:
    """One record as a follower sees it: the value and when Kafka stamped it (ms since the epoch)."""

    value: bytes | None
    timestamp_ms: int


class Follower:
    """Reads back one topic's events of some types, each batch once its newest record is `delay` old."""

    def __init__(
        self,
        job: str,
        event_types: Sequence[type[Event]],
        handle: FollowedHandler,
        *,
        delay_seconds: float,
        stuck: StuckMarks | None,
        item_id: Callable[[Event], str],
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.job = job
        self.event_types = tuple(event_types)
        self._types = {t.event_type: t for t in event_types}
        self._handle = handle
        self._delay = delay_seconds
        self._stuck = stuck
        self._item_id = item_id
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._backoff = backoff_seconds
        self._outage = RepeatingFailure(log, f"{job}: the database is not reachable; waiting")

    def decode(self, records: Sequence[FollowedRecord]) -> list[tuple[Event, CloudEvent]]:
        """The records' events of the followed types; anything else (other types, bad records) is passed over."""
        events: list[tuple[Event, CloudEvent]] = []
        for record in records:
            if record.value is None:
                continue
            try:
                envelope = CloudEvent.from_bytes(record.value)
                model = self._types.get(envelope.type)
                if model is None:
                    continue
                events.append((model.model_validate(envelope.data), envelope))
            except (ValidationError, ValueError):
                continue  # the topic's consumers dead-letter what cannot be read
        return events

    async def follow(self, records: Sequence[FollowedRecord]) -> int:
        """Handle one batch once it is old enough; returns how many events were handled."""
        if not records:
            return 0
        newest = max(r.timestamp_ms for r in records) / 1000
        wait = newest + self._delay - self._wall_clock()
        if wait > 0:
            await self._sleep(wait)
        events = pending = self.decode(records)
        attempts = 0
        while pending:
            attempts += 1
            try:
                failures = await self._handle(pending)
            except OUTAGES as exc:
                self._outage.failed(exc, retry_in=self._backoff)
                await self._sleep(self._backoff)
                attempts -= 1  # an outage is nobody's fault: it costs no attempt
                continue
            except Exception as exc:  # the batch as a whole failed: every item of it counts as failed
                failures = {self._item_id(event): exc for event, _ in pending}
            self._outage.recovered()
            if not failures:
                break
            if any(isinstance(error, OUTAGES) for error in failures.values()):
                await self._sleep(self._backoff)
                attempts -= 1
            elif attempts >= MAX_ATTEMPTS:
                for item, error in failures.items():
                    log.error("%s: giving up on %s after %d attempts: %r", self.job, item, attempts, error)
                    if self._stuck is not None:
                        await self._stuck.mark(self.job, item, repr(error))
                break
            else:
                await self._sleep(self._backoff * attempts)
            pending = [pair for pair in pending if self._item_id(pair[0]) in failures]
        return len(events)
