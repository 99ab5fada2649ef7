"""Per-pledge copies in MongoDB (`pledges`): derived from the ledgers for listing, never newer-overwritten."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ksbb_pledges.app.ports import Page
from ksbb_pledges.domain.pledge import Ledger, Pledge

#: Ledger fields the copies repair does not need to read.
OUTBOX_FIELDS_HIDDEN = {"_outbox": 0, "_outbox_pending": 0, "_outbox_lease": 0, "_applied": 0}


class MongoPledgeCopies:
    """Writes, lists and repairs the per-pledge copies of the ledgers' pledges."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.copies = db["pledges"]
        self.ledgers = db["ledgers"]

    async def create_indexes(self) -> None:
        """Indexes of the listings."""
        await self.copies.create_index([("donor_id", ASCENDING)])
        await self.copies.create_index([("need_id", ASCENDING)])
        await self.copies.create_index([("recipient_id", ASCENDING)])

    async def sync(self, ledger: Ledger, pledges: Sequence[Pledge]) -> None:
        """Upsert the copies of these pledges, never overwriting a newer one."""
        if not pledges:
            return
        operations = [
            ReplaceOne(
                {"_id": p["pledge_id"], "version": {"$lt": p["version"]}},
                _copy(ledger, p),
                upsert=True,
            )
            for p in pledges
        ]
        try:
            await self.copies.bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            # Duplicate keys mean a newer copy is already there; anything else is a real failure.
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def page(
        self, *, donor_id: str | None = None, recipient_id: str | None = None, cursor: str | None, limit: int
    ) -> Page:
        """A page of copies in id order (of one donor, one recipient, or all)."""
        query: dict[str, Any] = {}
        if donor_id is not None:
            query["donor_id"] = donor_id
        if recipient_id is not None:
            query["recipient_id"] = recipient_id
        if cursor:
            query["_id"] = {"$gt": cursor}
        found = [c async for c in self.copies.find(query).sort("_id", 1).limit(limit + 1)]
        next_cursor = found[limit - 1]["_id"] if len(found) > limit else None
        return Page(items=found[:limit], next_cursor=next_cursor)

    async def repair(self, *, since: datetime | None = None) -> int:
        """Rewrite copies that a crash left behind the ledger; returns how many were rewritten.

        `since` limits the scan to ledgers changed after it (the periodic sweep); None scans all (the
        first sweep after a start, which covers any time the service was down).
        """
        repaired = 0
        query: dict[str, Any] = {} if since is None else {"updated_at": {"$gte": since}}
        async for ledger in self.ledgers.find(query, projection=OUTBOX_FIELDS_HIDDEN):
            copies = {
                c["_id"]: c.get("version", 0)
                async for c in self.copies.find({"need_id": ledger["_id"]}, projection={"version": 1})
            }
            stale = [p for p in ledger.get("pledges", []) if copies.get(p["pledge_id"], 0) < p["version"]]
            if stale:
                await self.sync(ledger, stale)
                repaired += len(stale)
        return repaired


def _copy(ledger: Ledger, pledge: Pledge) -> dict[str, Any]:
    """The copy of one pledge: the pledge with its need's facts, keyed by the pledge id."""
    return {
        **{k: v for k, v in pledge.items() if k not in ("pledge_id", "request_hash")},
        "_id": pledge["pledge_id"],
        "need_id": ledger["_id"],
        "recipient_id": ledger["recipient_id"],
        "organisation_id": ledger["organisation_id"],
        "kelurahan_code": ledger["kelurahan_code"],
        "item": ledger["item"],
        "unit": ledger.get("unit"),
    }
