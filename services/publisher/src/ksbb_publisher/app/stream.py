"""The live feed: fan-out of new entries to Server-Sent-Events clients and resumable SSE sessions."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ksbb_publisher.app.ports import Doc, ReadModels

Renderer = Callable[[list[Doc]], Awaitable[list[dict[str, Any]]]]


def sse_frame(entry: dict[str, Any]) -> str:
    """One SSE message: `id` is the insertion sequence `seq` so clients resume with Last-Event-ID."""
    return f"id: {entry['seq']}\nevent: feed\ndata: {json.dumps(entry, default=str, ensure_ascii=False)}\n\n"


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

    async def announce_one(self, entry: Doc) -> None:
        """Announce one entry just stored by this process."""
        await self.announce([entry])


class FeedStream:
    """SSE sessions: replay what a client missed (from the read model), then live entries, in `seq` order."""

    def __init__(
        self, read_models: ReadModels, render: Renderer, broadcaster: FeedBroadcaster, heartbeat_seconds: float
    ) -> None:
        self._read = read_models
        self._render = render
        self._broadcaster = broadcaster
        self._heartbeat = heartbeat_seconds

    async def resume_point(self, last_event_id: str) -> int | None:
        """The `seq` to resume after, from an SSE id; None when it is not one of ours.

        Current ids are the `seq` (digits). Ids from before `seq` existed are feed cursors: resume after
        that entry's seq, or — when it is unknown — just before the first entry with a later cursor.
        """
        value = last_event_id.strip()
        if value.isdigit():
            return int(value)
        if "~" not in value:
            return None
        seq = await self._read.feed_seq_at_cursor(value)
        if seq is not None:
            return seq
        later = await self._read.first_feed_seq_after_cursor(value)
        return later - 1 if later is not None else await self._read.latest_feed_seq()

    async def open(self, resume_from: str | None) -> AsyncIterator[str]:
        """A session's frames, after `resume_from` (an SSE id) or from now on; errors surface before streaming."""
        subscriber = self._broadcaster.subscribe()
        # Subscribe first, then fix the starting point: nothing projected in between can be missed.
        try:
            resumed = await self.resume_point(resume_from) if resume_from else None
            last: int = resumed if resumed is not None else await self._read.latest_feed_seq()
        except BaseException:
            self._broadcaster.unsubscribe(subscriber)
            raise
        return self._frames(subscriber, last)

    async def _stored(self, after_seq: int, upto: int | None) -> list[tuple[int, str]]:
        docs = await self._read.feed_after(after_seq, 500, upto=upto)
        return [(e["seq"], sse_frame(e)) for e in await self._render(docs)]

    async def _frames(self, subscriber: Subscriber, last: int) -> AsyncIterator[str]:
        # `last` is a watermark: every entry with seq <= last was sent, none above it. Frames go out
        # strictly in seq order, so the client's Last-Event-ID is always a safe point to resume from.
        try:
            yield "retry: 3000\n\n"
            while frames := await self._stored(last, None):
                for seq, frame in frames:
                    yield frame
                    last = seq
            while True:
                if subscriber.dropped.is_set() and subscriber.queue.empty():
                    return  # too slow: end the stream; the client resumes with Last-Event-ID
                try:
                    seq, frame = await asyncio.wait_for(subscriber.queue.get(), timeout=self._heartbeat)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
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

