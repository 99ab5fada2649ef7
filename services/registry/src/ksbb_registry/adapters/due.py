"""Work the registry's sweeps must look at, one small document per item: the sweeps never scan aggregates.

An entry (`sweep_due`: `{_id: "<kind>/<id>", kind, item, at, rev}`) is written *before* the write that makes
an aggregate due (a need's next period, a recipient's unfinished need closure) and dropped *after* the write
that ends it, only if nobody renewed it meanwhile (`rev`, a fresh token on every put). A crash in between
leaves an entry with nothing due — the sweep finds that out on the aggregate and drops it — never due work
without an entry. The collection holds pending work only, so an idle sweep reads next to nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ksbb_kit.ids import new_id
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
DUE = "sweep_due"
#: "Due now": the time of entries whose work has no date.
NOW = datetime(1970, 1, 1, tzinfo=UTC)


class DueEntries:
    """The entries of one kind of work (e.g. `needs.series_next_at`)."""

    def __init__(self, db: AsyncDatabase[Doc], kind: str) -> None:
        self._entries = db[DUE]
        self.kind = kind

    def _id(self, item: Any) -> str:
        return f"{self.kind}/{item}"

    async def put(self, item: Any, at: datetime | None) -> None:
        """The item is (about to be) due at `at` (None: now). Before the write that makes it due."""
        await self._entries.update_one(
            {"_id": self._id(item)},
            {"$set": {"kind": self.kind, "item": item, "at": at or NOW, "rev": new_id("due")}},
            upsert=True,
        )

    async def seen(self, item: Any) -> str | None:
        """The entry's revision, read before a write that may end the work (for `drop`)."""
        entry = await self._entries.find_one({"_id": self._id(item)}, {"rev": 1})
        return None if entry is None else str(entry["rev"])

    async def drop(self, item: Any, rev: str | None) -> None:
        """Forget the entry after the work ended, unless it was renewed since `rev` was read."""
        if rev is not None:
            await self._entries.delete_one({"_id": self._id(item), "rev": rev})

    async def due(self, now: datetime) -> list[Doc]:
        """Entries due by `now` (a read of the small entry collection)."""
        return [e async for e in self._entries.find({"kind": self.kind, "at": {"$lte": now}})]

    async def settle(self, entry: Doc, at: datetime | None) -> None:
        """Correct an entry the sweep found wrong: move it to `at`, or drop it (None), unless renewed since."""
        guard = {"_id": entry["_id"], "rev": entry["rev"]}
        if at is None:
            await self._entries.delete_one(guard)
        else:
            await self._entries.update_one(guard, {"$set": {"at": at}})

    async def adopt(self, items: Iterable[tuple[Any, datetime | None]]) -> None:
        """Entries for work written before entries existed (once per start)."""
        for item, at in items:
            await self.put(item, at)


def due_time(value: Any) -> datetime | None:
    """When a due field's value makes its item due: its time, or now for a flag."""
    return value if isinstance(value, datetime) else None
