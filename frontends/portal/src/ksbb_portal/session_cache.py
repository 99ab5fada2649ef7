"""A short-lived, per-process copy of recently read sessions that never outlives a change made on any replica.

Every change of a session (sign-out, refreshed tokens, language, flash messages) is written to the session
document first and then noted in the shared `session_changes` collection. Each portal process reads the notes
of the last few seconds in one small query every `bound / 3` seconds and forgets the sessions they name. A
copy is used only while the latest successful read of the notes started less than `bound` seconds ago, so a
change made on one replica is seen by every replica within `bound` seconds; when the notes cannot be read,
every request reads its session from the database again (as without the cache).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

log = logging.getLogger(__name__)

#: Notes are read back this far before the previous read (clock differences between replicas, slow writes).
CLOCK_SLACK = timedelta(seconds=5)
#: Notes older than this are deleted by the housekeeping job (they were read by every live replica long ago).
NOTES_KEPT = timedelta(minutes=10)


class SessionCache:
    """Session documents by key, used only while the change notes are fresh enough; bounded (LRU)."""

    def __init__(self, bound_seconds: float, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bound = bound_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._usable_until = float("-inf")
        #: Successful reads of the notes so far; a database read tagged with an older epoch may predate a change.
        self.epoch = 0
        self._forgotten_at: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        """Whether copies are kept at all (a bound of 0 turns the cache off)."""
        return self.bound > 0

    def usable(self) -> bool:
        """Whether the latest successful read of the notes started less than `bound` seconds ago."""
        return self.enabled and self.clock() < self._usable_until

    def get(self, key: str) -> dict[str, Any] | None:
        """The kept document of a session, while copies may be used."""
        if not self.usable():
            return None
        doc = self._entries.get(key)
        if doc is not None:
            self._entries.move_to_end(key)
        return doc

    def put(self, key: str, doc: dict[str, Any], read_in_epoch: int) -> None:
        """Keep a document read from the database, unless a change note about it arrived since the read began."""
        if not self.enabled or self._forgotten_at.get(key, -1) > read_in_epoch:
            return
        self._entries[key] = doc
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop the copy of one session (changed by this process)."""
        self._entries.pop(key, None)

    def noted(self, keys: set[str], read_started: float) -> None:
        """The result of one successful read of the notes that started at `read_started` (clock seconds)."""
        self.epoch += 1
        for key in keys:
            self._entries.pop(key, None)
            self._forgotten_at[key] = self.epoch
        # A database read spanning this many reads of the notes would long have timed out.
        oldest = self.epoch - 1000
        if oldest > 0 and self.epoch % 100 == 0:
            self._forgotten_at = {k: e for k, e in self._forgotten_at.items() if e > oldest}
        self._usable_until = max(self._usable_until, read_started + self.bound)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


class ChangeNotes:
    """The shared notes of changed sessions (`session_changes`: key and when) and this process's reading of them."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]], cache: SessionCache,
                 now: Callable[[], Any]) -> None:
        self.collection = collection
        self.cache = cache
        self._now = now
        self._since: Any = None

    async def note(self, key: str) -> None:
        """Tell every replica that a session changed (after the change itself was written)."""
        self.cache.forget(key)
        # Noted even when this process keeps no copies: other replicas may.
        await self.collection.insert_one({"key": key, "at": self._now()})

    async def read(self) -> int:
        """Forget the sessions changed since the previous read (with slack); how many notes were read."""
        started, wall = self.cache.clock(), self._now()
        since = (self._since or wall) - CLOCK_SLACK
        keys = {doc["key"] async for doc in self.collection.find({"at": {"$gte": since}}, {"key": 1, "_id": 0})}
        self.cache.noted(keys, started)
        self._since = wall
        return len(keys)

    async def delete_old(self) -> int:
        """Delete notes every replica has read long ago."""
        result = await self.collection.delete_many({"at": {"$lt": self._now() - NOTES_KEPT}})
        return result.deleted_count
