"""Per-pledge copies in MongoDB (`pledges`): every pledge for listing, and the only home of settled ones.

A live pledge's copy follows its ledger (never overwritten by an older version). Once a pledge settles,
its copy is written first and it then leaves the ledger's `leaving` list (`move_out`): from then on the
copy is the pledge.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from ksbb_pledges.app.ports import Page
from ksbb_pledges.domain.ledger import is_live
from ksbb_pledges.domain.pledge import Ledger, Pledge

#: Ledger fields the copies repair does not need to read.
OUTBOX_FIELDS_HIDDEN = {"_outbox": 0, "_outbox_pending": 0, "_outbox_lease": 0, "_applied": 0}
#: Rounds of writing a pledge's copy before giving up (each after reading the versions held anew).
SYNC_ATTEMPTS = 10
#: Fields a copy adds to its pledge (the need's facts).
NEED_FACTS = ("need_id", "recipient_id", "organisation_id", "kelurahan_code", "item", "unit")


class MongoPledgeCopies:
    """Writes, lists and repairs the per-pledge copies of the ledgers' pledges."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.copies = db["pledges"]
        self.ledgers = db["ledgers"]

    async def create_indexes(self) -> None:
        """Indexes of the listings."""
        # Version-guarded writes name `_id` and `version` only: this index answers them on any server.
        await self.copies.create_index([("_id", ASCENDING), ("version", ASCENDING)], unique=True)
        await self.copies.create_index([("donor_id", ASCENDING)])
        await self.copies.create_index([("need_id", ASCENDING)])
        await self.copies.create_index([("recipient_id", ASCENDING)])
        await self.copies.create_index([("offer_id", ASCENDING)])

    async def get(self, pledge_id: str) -> dict[str, Any] | None:
        """One pledge's copy (with its need's facts), or None."""
        return await self.copies.find_one({"_id": pledge_id})

    async def versions(self, pledge_ids: Sequence[str]) -> dict[str, int]:
        """The copied version of each of these pledges that has a copy (one query)."""
        if not pledge_ids:
            return {}
        found = self.copies.find({"_id": {"$in": list(pledge_ids)}}, projection={"version": 1})
        return {c["_id"]: int(c.get("version", 0)) async for c in found}

    async def of_need(self, need_id: str) -> list[Pledge]:
        """Every copied pledge of a need, as its ledger would hold it."""
        return [pledge_of_copy(c) async for c in self.copies.find({"need_id": need_id})]

    async def of_offer(self, offer_id: str) -> dict[str, Pledge]:
        """The copied pledges made from an offer, by need id."""
        return {c["need_id"]: pledge_of_copy(c) async for c in self.copies.find({"offer_id": offer_id})}

    async def sync(self, ledger: Ledger, pledges: Sequence[Pledge]) -> None:
        """Write the copies of these pledges, never overwriting a newer one (the same version: rewritten).

        Each write names its copy by `_id` and the exact version it replaces, which the unique index on both
        answers on any server (a `version <= n` filter is a scan of every copy on the stand-in, one that
        grows with history). The usual case — a new pledge, or a copy one version behind — is one command;
        otherwise the versions held are read and the writes that missed are made again.
        """
        if not pledges:
            return
        todo = {p["pledge_id"]: p for p in pledges}
        held: dict[str, int] = {i: p["version"] - 1 for i, p in todo.items() if p["version"] > 1}
        for _ in range(SYNC_ATTEMPTS):
            operations: list[InsertOne[dict[str, Any]] | ReplaceOne[dict[str, Any]]] = [
                InsertOne(_copy(ledger, p)) if i not in held
                else ReplaceOne({"_id": i, "version": held[i]}, _copy(ledger, p))
                for i, p in todo.items()
                if held.get(i, 0) <= p["version"]
            ]
            if not operations:
                return
            inserts = sum(isinstance(op, InsertOne) for op in operations)
            try:
                result = await self.copies.bulk_write(operations, ordered=False)
                done = inserts + result.matched_count
            except BulkWriteError as exc:
                # A duplicate key: the copy exists already (at some version); anything else is a real failure.
                # (Counted from the errors: the stand-in counts a refused insert as inserted.)
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != 11000 for e in errors):
                    raise
                done = inserts - len(errors) + exc.details.get("nMatched", 0)
            if done == len(operations):
                return
            # Some copy was not at the version assumed: read what is held and write again (a copy already
            # written at its version is rewritten unchanged).
            held = await self.versions(list(todo))
        raise RuntimeError(f"copies of {sorted(todo)} kept changing while being written")

    async def move_out(self, ledger: Ledger, settled: Sequence[Pledge]) -> None:
        """Settled pledges leave their ledger: their copies are written first, then the ledger lets go of them.

        Idempotent, so a move a crash interrupted is simply done again. A settled pledge never changes, so
        the ledger's revision need not move (no decision depends on where a settled pledge is kept).
        """
        if not settled:
            return
        await self.sync(ledger, settled)
        ids = [p["pledge_id"] for p in settled]
        await self.ledgers.update_one(
            {"_id": ledger["_id"]},
            {"$pull": {"leaving": {"pledge_id": {"$in": ids}}, "pledges": {"pledge_id": {"$in": ids}}}},
        )

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
        """Rewrite copies that a crash left behind the ledger, finish interrupted moves; returns how many.

        `since` limits the scan to ledgers changed after it (the periodic sweep); None scans all (the
        first sweep after a start, which covers any time the service was down). Settled pledges still in a
        ledger — parked in `leaving` by an interrupted move, or kept there before pledges left ledgers —
        move out to their copies.
        """
        repaired = 0
        query: dict[str, Any] = {} if since is None else {"updated_at": {"$gte": since}}
        async for ledger in self.ledgers.find(query, projection=OUTBOX_FIELDS_HIDDEN):
            held = ledger.get("pledges", [])
            ids = [p["pledge_id"] for p in held]
            copies = {
                c["_id"]: c.get("version", 0)
                async for c in self.copies.find({"_id": {"$in": ids}}, projection={"version": 1})
            }
            stale = [p for p in held if is_live(p) and copies.get(p["pledge_id"], 0) < p["version"]]
            if stale:
                await self.sync(ledger, stale)
                repaired += len(stale)
            settled = [*ledger.get("leaving", []), *(p for p in held if not is_live(p))]
            if settled:
                await self.move_out(ledger, settled)
                repaired += len(settled)
        return repaired


def _copy(ledger: Ledger, pledge: Pledge) -> dict[str, Any]:
    """The copy of one pledge: the pledge with its need's facts, keyed by the pledge id."""
    return {
        **{k: v for k, v in pledge.items() if k != "pledge_id"},
        "_id": pledge["pledge_id"],
        "need_id": ledger["_id"],
        "recipient_id": ledger["recipient_id"],
        "organisation_id": ledger["organisation_id"],
        "kelurahan_code": ledger["kelurahan_code"],
        "item": ledger["item"],
        "unit": ledger.get("unit"),
    }


def pledge_of_copy(copy: dict[str, Any]) -> Pledge:
    """A pledge as its ledger held it, from its copy."""
    return {
        **{k: v for k, v in copy.items() if k not in ("_id", *NEED_FACTS)},
        "pledge_id": copy["_id"],
    }
