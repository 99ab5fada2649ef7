"""The pending webhook queue's size and oldest entry, read from the due index (pending deliveries only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase


class MongoPendingDeliveries:
    """Counts pending deliveries and finds the oldest one through their due-index entries.

    The due index holds one small entry per pending delivery (see `DueIndex`), so the gauges read the
    pending work only, never the delivery history the retention keeps.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._entries = db["delivery_due"]

    async def summary(self) -> tuple[int, datetime | None]:
        """How many deliveries are pending, and when the oldest of them was created."""
        count = await self._entries.count_documents({})
        if not count:
            return 0, None
        oldest = await self._entries.find_one({"created_at": {"$exists": True}}, {"created_at": 1},
                                              sort=[("created_at", ASCENDING)])
        return count, oldest["created_at"] if oldest is not None else None
