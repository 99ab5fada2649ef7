"""Rebuilding the read models: drop them and apply every public event again, from the topics' beginning."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ksbb_contracts import EVENT_TYPES, CloudEvent
from pydantic import ValidationError

from ksbb_publisher.app.ports import ProjectionStore, TopicReplay

EventHandler = Callable[[Any, CloudEvent], Awaitable[None]]


async def rebuild_read_models(
    store: ProjectionStore,
    replay: TopicReplay,
    topics: Sequence[str],
    handlers: Mapping[str, EventHandler],
    *,
    concurrency: int = 32,
) -> dict[str, int]:
    """Reset the read models and apply every record of `topics` with the live consumer's `handlers`.

    Reads up to the end offsets seen at the start; the service's consumer group continues from its own
    committed offsets afterwards, and events read by both are applied once thanks to idempotent projections.
    Returns how many events were applied, skipped (not handled here, tombstones) and malformed.
    """
    await store.reset()
    counts = {"applied": 0, "skipped": 0, "malformed": 0}
    async for batch in replay.batches(topics):
        # Records of one aggregate (topic + key) stay in order; different aggregates are applied
        # concurrently — projections do not depend on the order across aggregates or topics.
        chains: dict[tuple[str, bytes | None], list[bytes | None]] = {}
        for record in batch:
            chains.setdefault((record.topic, record.key), []).append(record.value)
        await _apply_chains(list(chains.values()), handlers, counts, concurrency)
    return counts


async def _apply_chains(
    chains: list[list[bytes | None]],
    handlers: Mapping[str, EventHandler],
    counts: dict[str, int],
    concurrency: int,
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def run(chain: list[bytes | None]) -> None:
        async with gate:
            for value in chain:
                await _apply_record(value, handlers, counts)

    await asyncio.gather(*(run(chain) for chain in chains))


async def _apply_record(value: bytes | None, handlers: Mapping[str, EventHandler], counts: dict[str, int]) -> None:
    if value is None:
        counts["skipped"] += 1
        return
    try:
        envelope = CloudEvent.from_bytes(value)
        handler = handlers.get(envelope.type)
        if handler is None:
            counts["skipped"] += 1
            return
        event: Any = EVENT_TYPES[envelope.type].model_validate(envelope.data)
    except (ValidationError, ValueError):
        counts["malformed"] += 1  # the live consumer dead-letters these; a rebuild skips them the same way
        return
    await handler(event, envelope)
    counts["applied"] += 1
