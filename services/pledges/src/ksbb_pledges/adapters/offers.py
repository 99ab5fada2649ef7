"""Offers in MongoDB: each change written with its events in the same single-document write."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ksbb_contracts import Event
from ksbb_kit.outbox import PendingWrite, new_document, strip_outbox, with_outbox
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_pledges.adapters.outbox import OutboxEntries
from ksbb_pledges.app.ports import Page
from ksbb_pledges.domain.offers import Offer


class MongoOfferStore:
    """Stores offers; state changes are conditional on the offer's status."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, outbox: OutboxEntries, pending: PendingWrite) -> None:
        self.offers = db["offers"]
        self._outbox = outbox
        self._pending = pending

    async def get(self, offer_id: str) -> Offer | None:
        """An offer without outbox bookkeeping."""
        return strip_outbox(await self.offers.find_one({"_id": offer_id}))

    async def insert(self, offer: Offer, events: Sequence[Event]) -> bool:
        """Store a new offer with its events; False when one with its id exists already."""
        entries = self._outbox(*events)
        try:
            async with self._pending("offers", offer["_id"], entries):
                await self.offers.insert_one(new_document(offer, entries))
        except DuplicateKeyError:
            return False
        return True

    async def page(self, *, donor_id: str | None, cursor: str | None, limit: int) -> Page:
        """A page of offers in id order (of one donor, or all)."""
        query: dict[str, Any] = {} if donor_id is None else {"donor_id": donor_id}
        if cursor:
            query["_id"] = {"$gt": cursor}
        found = [o async for o in self.offers.find(query, projection={"_outbox": 0}).sort("_id", 1).limit(limit + 1)]
        next_cursor = found[limit - 1]["_id"] if len(found) > limit else None
        return Page(items=found[:limit], next_cursor=next_cursor)

    async def claim_for_acceptance(self, offer_id: str, acceptable: Sequence[str], now: datetime) -> Offer | None:
        """Mark an offer `accepting` if it is in an acceptable state; None when it is not."""
        return await self.offers.find_one_and_update(
            {"_id": offer_id, "status": {"$in": list(acceptable)}},
            {"$set": {"status": "accepting", "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def change_if(self, offer_id: str, status: str, fields: dict[str, Any], events: Sequence[Event]) -> bool:
        """Set fields (with their events) of an offer that is in `status`; False when it is not."""
        entries = self._outbox(*events)
        async with self._pending("offers", offer_id, entries):
            result = await self.offers.update_one(
                {"_id": offer_id, "status": status}, with_outbox({"$set": fields}, entries)
            )
        return result.matched_count > 0
