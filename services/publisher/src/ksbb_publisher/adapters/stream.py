"""In-process fan-out of new feed entries to Server-Sent-Events clients, one bounded queue per client."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger(__name__)
Renderer = Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


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
    with Last-Event-ID and replays the missed entries from MongoDB, so nothing is lost.
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

    async def announce(self, entries: list[dict[str, Any]]) -> int:
        """Render raw feed documents once and queue them for every client; returns entries sent."""
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


class FeedPoller:
    """Finds entries projected by other replicas (or missed) and announces them, in `seq` order."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        broadcaster: FeedBroadcaster,
    ) -> None:
        self._db = db
        self._broadcaster = broadcaster
        self._after: int | None = None

    async def poll(self) -> int:
        """Announce entries with a `seq` above the last one polled (the broadcaster drops repeats).

        A seq only becomes visible after every lower one (see `Projector.insert_feed_entry`), so
        polling strictly after the highest seq seen never skips an entry.
        """
        if self._after is None:
            top = await self._db.feed.find_one({}, {"seq": 1}, sort=[("seq", DESCENDING)])
            self._after = int(top["seq"]) if top and "seq" in top else 0
        docs = [
            d
            async for d in self._db.feed.find({"seq": {"$gt": self._after}})
            .sort("seq", ASCENDING)
            .limit(5000)
        ]
        if not docs:
            return 0
        self._after = int(docs[-1]["seq"])
        return await self._broadcaster.announce(docs)
