"""Consuming in batches without giving up a single record's guarantees.

A service whose effects fold well (a projection) takes many records in one call: `BatchDispatcher`
parses a batch and hands every readable record of a handled type, in order, to one batch handler. A
record that cannot take that path — unreadable, an unknown or ignored type, a schema violation, a
tombstone — ends the run before it and goes through the `EventDispatcher` exactly as alone (ignored or
dead-lettered with its reason). When the batch handler fails, its records are handled one by one by
the same dispatcher (retries, then a dead letter for the one that keeps failing), so a poisoned record
costs the others nothing. Effects must be idempotent: a retried batch applies again what it applied.
Offsets are committed after the whole batch (FastStream `NACK_ON_ERROR` on a batch subscriber).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ksbb_contracts import EVENT_TYPES, CloudEvent
from pydantic import ValidationError

from ksbb_kit.consumer import ConsumedRecord, EventDispatcher, EventRouter
from ksbb_kit.metrics import HANDLER_OUTCOMES

log = logging.getLogger(__name__)
#: One parsed record: the event model and its envelope.
BatchItem = tuple[Any, CloudEvent]
#: Applies parsed records in their order; raises to have them handled one by one.
BatchHandler = Callable[[Sequence[BatchItem]], Awaitable[None]]


class BatchDispatcher:
    """Applies runs of handled records with one call; everything else goes the single-record way."""

    def __init__(self, dispatcher: EventDispatcher, router: EventRouter, apply: BatchHandler) -> None:
        self._dispatcher = dispatcher
        self._types = set(router.handlers)
        self._apply = apply

    async def handle(self, records: Sequence[ConsumedRecord]) -> dict[str, int]:
        """Process records in order; returns how many were applied in batches and how many went alone."""
        outcome = {"batched": 0, "alone": 0}
        run: list[tuple[ConsumedRecord, BatchItem]] = []
        for record in records:
            item = self._parsed(record)
            if item is not None:
                run.append((record, item))
                continue
            # The run so far is applied first, so records of one key keep their order.
            await self._apply_run(run, outcome)
            run = []
            await self._dispatcher.handle(record)
            outcome["alone"] += 1
        await self._apply_run(run, outcome)
        return outcome

    def _parsed(self, record: ConsumedRecord) -> BatchItem | None:
        if record.unreadable is not None or record.value is None:
            return None
        try:
            envelope = CloudEvent.from_bytes(record.value)
            if envelope.type not in self._types:
                return None
            return EVENT_TYPES[envelope.type].model_validate(envelope.data), envelope
        except (ValidationError, ValueError):
            return None

    async def _apply_run(self, run: list[tuple[ConsumedRecord, BatchItem]], outcome: dict[str, int]) -> None:
        if not run:
            return
        try:
            await self._apply([item for _, item in run])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("a batch of %d records failed (%s); handling them one by one", len(run), exc)
            for record, _ in run:
                await self._dispatcher.handle(record)
            outcome["alone"] += len(run)
            return
        for _, (_, envelope) in run:
            HANDLER_OUTCOMES.labels(event_type=envelope.type, outcome="handled").inc()
        outcome["batched"] += len(run)


async def tolerant_batch_parser(records: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's batch parser, made unable to fail on a header that is not UTF-8: it parses readable
    copies; the message keeps the raw records, whose bytes the dispatcher reads (and dead-letters)."""
    readable = tuple(
        dataclasses.replace(record, headers=[
            (name, (value or b"").decode("utf-8", errors="replace").encode()) for name, value in (record.headers or ())
        ])
        for record in records
    )
    message = await original(readable)
    message.raw_message = records
    return message


async def raw_batch_decoder(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """Leave the bodies as bytes: FastStream would parse them by their content-type and fail on a poison record."""
    return message.body
