"""Finds feed entries projected by other replicas (or missed) and announces them to this replica's clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

Announce = Callable[[list[dict[str, Any]]], Awaitable[int]]


class FeedPoller:
    """Announces new feed entries in `seq` order; the announcer drops entries it has sent already."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], announce: Announce) -> None:
        self._db = db
        self._announce = announce
        self._after: int | None = None

    async def poll(self) -> int:
        """Announce entries with a `seq` above the last one polled; returns how many were new.

        A seq only becomes visible after every lower one (see `MongoProjectionStore.insert_feed_entry`),
        so polling strictly after the highest seq seen never skips an entry.
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
        return await self._announce(docs)
