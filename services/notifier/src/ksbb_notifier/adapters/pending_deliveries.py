"""The pending webhook queue's size and oldest entry, read from the deliveries collection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase


class MongoPendingDeliveries:
    """Counts pending deliveries (status index) and finds the oldest one."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._deliveries = db["deliveries"]

    async def summary(self) -> tuple[int, datetime | None]:
        """How many deliveries are pending, and when the oldest of them was created."""
        count = await self._deliveries.count_documents({"status": "pending"})
        if not count:
            return 0, None
        oldest = await self._deliveries.find_one({"status": "pending"}, {"created_at": 1},
                                                 sort=[("created_at", ASCENDING)])
        return count, oldest["created_at"] if oldest is not None else None
