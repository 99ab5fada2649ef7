"""Rebuilding the read models: drop them and apply every public event again, from the topics' beginning."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence
from typing import Any

from ksbb_contracts import EVENT_TYPES, CloudEvent
from pydantic import ValidationError

from ksbb_publisher.app.ports import Progress, ProjectionStore, TopicReplay
from ksbb_publisher.app.projection import Projection


async def rebuild_read_models(
    store: ProjectionStore,
    replay: TopicReplay,
    topics: Sequence[str],
    handled: Collection[str],
    projection: Projection,
    *,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Reset the read models and apply every record of `topics` through the live consumer's batch path.

    Event types outside `handled` are skipped, like tombstones. Reads up to the end offsets seen at the
    start; the service's consumer group continues from its own committed offsets afterwards, and events
    read by both are applied once thanks to idempotent projections. Returns how many events were
    applied, skipped and malformed.
    """
    await store.reset()
    counts = {"applied": 0, "skipped": 0, "malformed": 0}
    if progress is not None:
        progress.start(await replay.size(topics))
    # A rebuild is bound by this process's CPU: the next batch is decoded while the previous one is written.
    # Batches are still applied one after another, so per-aggregate order holds.
    writing: asyncio.Task[None] | None = None
    try:
        async for batch in replay.batches(topics):
            items = [item for record in batch if (item := _parsed(record.value, handled, counts)) is not None]
            if writing is not None:
                await writing
                writing = None
            if items:
                # One batch folds per document: records of one aggregate keep their offset order in `items`.
                writing = asyncio.create_task(projection.apply_batch(items))
                counts["applied"] += len(items)
            if progress is not None:
                progress.advance(len(batch))
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writing
    return counts


def _parsed(value: bytes | None, handled: Collection[str], counts: dict[str, int]) -> tuple[Any, CloudEvent] | None:
    if value is None:
        counts["skipped"] += 1
        return None
    try:
        envelope = CloudEvent.from_bytes(value)
        if envelope.type not in handled:
            counts["skipped"] += 1
            return None
        event: Any = EVENT_TYPES[envelope.type].model_validate(envelope.data)
    except (ValidationError, ValueError):
        counts["malformed"] += 1  # the live consumer dead-letters these; a rebuild skips them the same way
        return None
    return event, envelope
