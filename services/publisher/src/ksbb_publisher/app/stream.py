"""The live feed: fan-out of new entries to Server-Sent-Events clients and resumable SSE sessions, within limits:
a bounded replay per resume (then a `reset` telling the client to reload) and a cap on open streams per client
address and in total."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ksbb_kit.wakeup import next_item

from ksbb_publisher.app.ports import Doc, ReadModels
from ksbb_publisher.domain.stream import StreamCapacity, must_reset, parse_position

Renderer = Callable[[list[Doc]], Awaitable[list[dict[str, Any]]]]


def sse_frame(entry: dict[str, Any]) -> str:
    """One SSE message: `id` is the insertion sequence `seq` so clients resume with Last-Event-ID."""
    return f"id: {entry['seq']}\nevent: feed\ndata: {json.dumps(entry, default=str, ensure_ascii=False)}\n\n"


def reset_frame(latest: int, max_replay: int) -> str:
    """The SSE message telling a client that fell too far behind to reload; it continues from `latest`."""
    data = {
        "reason": "too_far_behind",
        "max_replay": max_replay,
        "latest_seq": latest,
        "reload": "/v1/public/feed",
        "message": {
            "id": "Terlalu banyak kabar terlewat; muat ulang halaman.",
            "en": "Too many entries were missed; reload the page.",
        },
    }
    return f"id: {latest}\nevent: reset\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@dataclass(frozen=True)
class StreamLimits:
    """How much one resume replays and how many streams are open at once (per client address, in total)."""

    max_replay: int = 1000
    per_client: int = 4
    total: int = 500
    retry_after_seconds: int = 5


class StreamSlot:
    """One admitted stream's place in the capacity; given back once, when the stream ends or is dropped.

    A stream whose response never started is given back when it is garbage-collected.
    """

    def __init__(self, capacity: StreamCapacity, client: str) -> None:
        capacity.admit(client)
        self._release = weakref.finalize(self, capacity.release, client)

    def close(self) -> None:
        """Give the place back (idempotent)."""
        self._release()


class Subscriber:
    """One connected client: a bounded queue of frames; `dropped` once it fell too far behind."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(maxsize=size)
        self.dropped = asyncio.Event()


class FeedBroadcaster:
    """Pushes rendered feed entries to every subscriber without ever waiting for a slow one.

    A client whose queue is full is dropped (its stream ends); the browser's EventSource reconnects
    with Last-Event-ID and replays the missed entries from the read model, so nothing is lost.
    """

    def __init__(self, render: Renderer, queue_size: int = 256, remembered: int = 10000) -> None:
        self._render = render
        self._queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._recent: deque[str] = deque(maxlen=remembered)
        self._recent_set: set[str] = set()
        self.dropped_total = 0

    @property
    def subscriber_count(self) -> int:
        """Connected clients."""
        return len(self._subscribers)

    def subscribe(self) -> Subscriber:
        """Register a client."""
        subscriber = Subscriber(self._queue_size)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a client."""
        self._subscribers.discard(subscriber)

    def _remember(self, entry_id: str) -> bool:
        if entry_id in self._recent_set:
            return False
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(entry_id)
        self._recent_set.add(entry_id)
        return True

    async def announce(self, entries: list[Doc]) -> int:
        """Render stored feed entries once and queue them for every client; returns entries sent."""
        fresh = [e for e in entries if self._remember(e["_id"])]
        if not fresh or not self._subscribers:
            return len(fresh)
        frames = [(e["seq"], sse_frame(e)) for e in await self._render(fresh)]
        for subscriber in list(self._subscribers):
            for frame in frames:
                try:
                    subscriber.queue.put_nowait(frame)
                except asyncio.QueueFull:
                    self.dropped_total += 1
                    subscriber.dropped.set()
                    self.unsubscribe(subscriber)
                    break
        return len(fresh)


class FeedStream:
    """SSE sessions: replay what a client missed (from the read model), then live entries, in `seq` order."""

    def __init__(
        self,
        read_models: ReadModels,
        render: Renderer,
        broadcaster: FeedBroadcaster,
        heartbeat_seconds: float,
        limits: StreamLimits | None = None,
    ) -> None:
        self._read = read_models
        self._render = render
        self._broadcaster = broadcaster
        self._heartbeat = heartbeat_seconds
        self._limits = limits or StreamLimits()
        self.capacity = StreamCapacity(
            self._limits.per_client, self._limits.total, self._limits.retry_after_seconds
        )

    async def resume_point(self, position: int | str) -> int:
        """The `seq` to resume after, from a parsed stream position.

        Current ids are the `seq`. Ids from before `seq` existed are feed cursors: resume after that
        entry's seq, or — when it is unknown — just before the first entry with a later cursor.
        """
        if isinstance(position, int):
            return position
        seq = await self._read.feed_seq_at_cursor(position)
        if seq is not None:
            return seq
        later = await self._read.first_feed_seq_after_cursor(position)
        return later - 1 if later is not None else await self._read.latest_feed_seq()

    async def open(
        self, resume_from: str | None, *, field: str = "Last-Event-ID", client: str = "unknown"
    ) -> AsyncIterator[str]:
        """A session's frames, after `resume_from` (an SSE id) or from now on.

        Every refusal comes before the first byte: an invalid position (naming `field`), too many streams
        of this client or in total. A resume more than `max_replay` entries behind starts with `reset`.
        """
        position = parse_position(resume_from, field) if resume_from else None
        slot = StreamSlot(self.capacity, client)
        subscriber = self._broadcaster.subscribe()
        # Subscribe first, then fix the starting point: nothing projected in between can be missed.
        try:
            latest = await self._read.latest_feed_seq()
            resumed = await self.resume_point(position) if position is not None else latest
            reset = must_reset(resumed, latest, self._limits.max_replay)
        except BaseException:
            self._broadcaster.unsubscribe(subscriber)
            slot.close()
            raise
        return self._frames(subscriber, slot, latest if reset else resumed, reset=reset)

    async def _stored(self, after_seq: int, upto: int | None) -> list[tuple[int, str]]:
        docs = await self._read.feed_after(after_seq, 500, upto=upto)
        return [(e["seq"], sse_frame(e)) for e in await self._render(docs)]

    async def _frames(self, subscriber: Subscriber, slot: StreamSlot, last: int, *, reset: bool) -> AsyncIterator[str]:
        # `last` is a watermark: every entry with seq <= last was sent, none above it. Frames go out
        # strictly in seq order, so the client's Last-Event-ID is always a safe point to resume from.
        try:
            yield "retry: 3000\n\n"
            if reset:
                yield reset_frame(last, self._limits.max_replay)
            while frames := await self._stored(last, None):
                for seq, frame in frames:
                    yield frame
                    last = seq
            while True:
                if subscriber.dropped.is_set() and subscriber.queue.empty():
                    return  # too slow: end the stream; the client resumes with Last-Event-ID
                announced = await next_item(subscriber.queue, self._heartbeat)
                if announced is None:
                    yield ": heartbeat\n\n"
                    continue
                seq, frame = announced
                if seq <= last:
                    continue  # replayed already
                # Announced out of order (another replica's entry not polled yet): fill from the read model.
                while seq > last + 1 and (frames := await self._stored(last, seq - 1)):
                    for stored_seq, stored_frame in frames:
                        yield stored_frame
                        last = stored_seq
                yield frame
                last = seq
        finally:
            self._broadcaster.unsubscribe(subscriber)
            slot.close()

