"""Ids of one collection page by page for an owner's anti-entropy job (ADR 0005), and its cursor, in MongoDB."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

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
