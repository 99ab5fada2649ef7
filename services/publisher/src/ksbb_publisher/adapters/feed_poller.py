"""Finds feed entries projected by other replicas (or missed) and announces them to this replica's clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

Announce = Callable[[list[dict[str, Any]]], Awaitable[int]]
Doc = dict[str, Any]
#: Where the projection records the highest `seq` handed out (`top`) and a rebuild's `floor`.
FEED_SEQUENCE = "feed_sequence"
#: Numbers looked up per query.
WINDOW = 500
#: Numbers looked at above the recorded top: entries a replica stored but crashed before recording.
PROBE = 64


class FeedPoller:
    """Announces new feed entries in `seq` order; the announcer drops entries it has sent already.

    Each poll reads the recorded top (`feed_sequence`, by `_id`) and looks the next numbers up in the
    unique `seq` index: an idle poll costs two index lookups however long the feed has grown.
    """

    def __init__(self, db: AsyncDatabase[Doc], announce: Announce) -> None:
        self._db = db
        self._announce = announce
        self._after: int | None = None

    async def poll(self) -> int:
        """Announce entries with a `seq` above the last one polled; returns how many were new.

        A seq only becomes visible after every lower one (see `MongoProjectionStore.insert_feed_entries`),
        so polling strictly after the highest seq seen never skips an entry.
        """
        marks = await self._db[FEED_SEQUENCE].find_one({"_id": "feed"}) or {}
        top, floor = int(marks.get("top", 0)), int(marks.get("floor", 0))
        if self._after is None:
            self._after = top
            return 0
        announced = 0
        while True:
            fresh = await self._next_run(max(top, self._after) + PROBE)
            if not fresh and top > self._after:
                # The feed was rebuilt: numbering continues above the rebuild's floor (or, rarely, further).
                self._after = max(self._after, floor)
                fresh = await self._next_run(max(top, self._after) + PROBE) or await self._after_gap()
            if not fresh:
                return announced
            self._after = int(fresh[-1]["seq"])
            announced += await self._announce(fresh)
            if len(fresh) < WINDOW:
                return announced

    async def _next_run(self, upto: int) -> list[Doc]:
        """The entries right after the last one announced, without a gap, up to `upto` (index lookups)."""
        assert self._after is not None
        numbers = list(range(self._after + 1, min(upto, self._after + WINDOW) + 1))
        if not numbers:
            return []
        found = {d["seq"]: d async for d in self._db.feed.find({"seq": {"$in": numbers}})}
        run = []
        for number in numbers:
            if number not in found:
                break
            run.append(found[number])
        return run

    async def _after_gap(self) -> list[Doc]:
        # Rare (a rebuild without a recorded floor): one range query to find where the numbers continue.
        assert self._after is not None
        docs = [d async for d in self._db.feed.find({"seq": {"$gt": self._after}}).sort("seq", ASCENDING).limit(WINDOW)]
        run = [d for i, d in enumerate(docs) if d["seq"] == docs[0]["seq"] + i] if docs else []
        return run
