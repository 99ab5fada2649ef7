"""An owner's anti-entropy job (ADR 0005): ids of one collection page by page, its cursor in MongoDB, the pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_kit.jobs import StuckItems, for_each_item

#: One small document per anti-entropy job: `{_id: <job>, after: <last id restated>}`.
CURSORS = "anti_entropy_cursors"


class MongoRestatePages:
    """Pages of a collection by `_id` range (the unique index every server honours) and the pass's cursor."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], collection: str, *, job: str) -> None:
        self.items = db[collection]
        self.cursors = db[CURSORS]
        self.job = job

    async def ids_after(self, after: str | None, limit: int) -> list[str]:
        """Up to `limit` ids greater than `after`, in order."""
        query: dict[str, Any] = {} if after is None else {"_id": {"$gt": after}}
        cursor = self.items.find(query, projection={"_id": 1}).sort("_id", ASCENDING).limit(limit)
        return [doc["_id"] async for doc in cursor]

    async def cursor(self) -> str | None:
        """The last id restated by the previous page."""
        doc = await self.cursors.find_one({"_id": self.job})
        return (doc or {}).get("after")

    async def save_cursor(self, after: str | None) -> None:
        """Where the next page starts (None: from the first)."""
        await self.cursors.update_one({"_id": self.job}, {"$set": {"after": after}}, upsert=True)


class RestatePages(Protocol):
    """Ids in `_id` order, page by page, and where the anti-entropy pass stopped (survives restarts)."""

    async def ids_after(self, after: str | None, limit: int) -> list[str]:
        """Up to `limit` ids greater than `after` (from the first when None), in order."""
        ...

    async def cursor(self) -> str | None:
        """The last id the previous page restated (None: start from the first)."""
        ...

    async def save_cursor(self, after: str | None) -> None:
        """Remember where the next page starts."""
        ...


#: Publishes one aggregate's current state as a restatement; False when there is nothing to restate.
RestateOne = Callable[[str], Awaitable[bool]]


class RestatePass:
    """One anti-entropy job: restates a page of ids after the stored cursor per run, item by item (ADR 0005).

    Each id goes through `restate_one` under `for_each_item`, so one aggregate that raises is marked stuck and
    the page goes on. A page shorter than `page_size` ends the pass: the cursor is cleared and the next run
    starts again from the first id.
    """

    def __init__(
        self,
        pages: RestatePages,
        restate_one: RestateOne,
        *,
        job: str,
        page_size: int,
        stuck: StuckItems | None = None,
    ) -> None:
        self.pages = pages
        self.restate_one = restate_one
        self.job = job
        self.page_size = page_size
        self.stuck = stuck

    async def restate(self, aggregate_id: str) -> bool:
        """Restate one aggregate now, outside the pages (operators, tests); False when it has nothing to restate."""
        return await self.restate_one(aggregate_id)

    async def run_page(self) -> tuple[int, bool]:
        """Restate the next page; returns (aggregates restated, whether the pass reached the end)."""
        ids = await self.pages.ids_after(await self.pages.cursor(), self.page_size)
        run = await for_each_item(ids, self.restate, job=self.job, item_id=str, stuck=self.stuck)
        finished = len(ids) < self.page_size
        await self.pages.save_cursor(None if finished else ids[-1])
        return sum(run.results), finished

    async def run_pass(self) -> int:
        """Restate every aggregate from where the last page stopped to the end (tests, operators)."""
        total = 0
        while True:
            restated, finished = await self.run_page()
            total += restated
            if finished:
                return total
