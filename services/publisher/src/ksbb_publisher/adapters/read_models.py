"""The read models in MongoDB, read side: the queries behind the public API, pages, exports and stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_publisher.app.ports import Doc, NeedQuery, RecipientQuery
from ksbb_publisher.domain.areas import AREA_KEYS
from ksbb_publisher.domain.views import COUNTED_STATUSES, LIVE_PLEDGE_STATUSES, PUBLIC_RECIPIENT_STATUSES

#: A need document is only listed once the registry's part (with `version`) arrived, not just its ledger.
NEED_PUBLISHED: dict[str, Any] = {"version": {"$exists": True}}
PUBLISHED_RECIPIENT: dict[str, Any] = {"status": {"$in": list(PUBLIC_RECIPIENT_STATUSES)}}


class MongoReadModels:
    """Queries over the read models; returns raw documents for the app layer to shape."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    # -- lookups ---------------------------------------------------------------------------------

    async def organisation_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Organisation id -> name."""
        docs = self.db.organisations.find({"_id": {"$in": sorted(set(ids))}}, {"name": 1})
        return {d["_id"]: d["name"] async for d in docs}

    async def recipient_summaries(self, ids: Iterable[str]) -> dict[str, Doc]:
        """Recipient id -> name, kind, RW and households (public recipients only)."""
        docs = self.db.recipients.find(
            {"_id": {"$in": sorted(set(ids))}, **PUBLISHED_RECIPIENT},
            {"name": 1, "rw": 1, "beneficiaries": 1, "kind": 1},
        )
        return {d["_id"]: d async for d in docs}

    async def donor_names(self, ids: Iterable[str]) -> dict[str, str | None]:
        """Donor id -> display name if the donor opted in (absent otherwise)."""
        docs = self.db.donors.find({"_id": {"$in": sorted(set(ids))}}, {"display_name": 1})
        return {d["_id"]: d.get("display_name") async for d in docs}

    async def open_need_counts(self, recipient_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Recipient id -> number of open needs."""
        match: dict[str, Any] = {"status": "open", **NEED_PUBLISHED}
        if recipient_ids is not None:
            match["recipient_id"] = {"$in": sorted(set(recipient_ids))}
        rows = await self.db.needs.aggregate(
            [{"$match": match}, {"$group": {"_id": "$recipient_id", "n": {"$sum": 1}}}]
        )
        return {r["_id"]: r["n"] async for r in rows}

    async def delivered_by_recipient(self, recipient_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Recipient id -> packages delivered (from the need ledgers)."""
        match: dict[str, Any] = {"progress.delivered": {"$gt": 0}}
        if recipient_ids is not None:
            match["recipient_id"] = {"$in": sorted(set(recipient_ids))}
        rows = await self.db.needs.aggregate(
            [{"$match": match}, {"$group": {"_id": "$recipient_id", "n": {"$sum": "$progress.delivered"}}}]
        )
        return {r["_id"]: r["n"] async for r in rows}

    # -- recipients, needs, organisations ----------------------------------------------------------

    async def recipient_docs(self, query: RecipientQuery, limit: int) -> list[Doc]:
        """Up to `limit` published recipients matching the query, ordered by id."""
        find: dict[str, Any] = {"status": query.status or {"$in": list(PUBLIC_RECIPIENT_STATUSES)}}
        for field, value in (
            ("kota_code", query.kota),
            ("kecamatan_code", query.kecamatan),
            ("kelurahan_code", query.kelurahan),
            ("kind", query.kind),
        ):
            if value:
                find[field] = value
        if query.ids_in is not None:
            find["_id"] = {"$in": list(query.ids_in)}
        elif query.ids_not_in is not None:
            find["_id"] = {"$nin": list(query.ids_not_in)}
        if query.after:
            find.setdefault("_id", {})["$gt"] = query.after
        return [d async for d in self.db.recipients.find(find).sort("_id", ASCENDING).limit(limit)]

    async def recipient_doc(self, recipient_id: str) -> Doc | None:
        """One published recipient."""
        return await self.db.recipients.find_one({"_id": recipient_id, **PUBLISHED_RECIPIENT})

    async def need_docs(self, query: NeedQuery, batch: int) -> AsyncGenerator[Doc, None]:
        """Needs matching the query, ordered by id."""
        find: dict[str, Any] = dict(NEED_PUBLISHED)
        for field, value in (
            ("recipient_id", query.recipient_id),
            ("status", query.status),
            ("item", query.item),
            ("priority", query.priority),
            ("kota_code", query.kota),
            ("kecamatan_code", query.kecamatan),
            ("kelurahan_code", query.kelurahan),
        ):
            if value:
                find[field] = value
        if query.after:
            find["_id"] = {"$gt": query.after}
        async for doc in self.db.needs.find(find).sort("_id", ASCENDING).batch_size(batch):
            yield doc

    async def need_doc(self, need_id: str) -> Doc | None:
        """One need whose registry part is present."""
        return await self.db.needs.find_one({"_id": need_id, **NEED_PUBLISHED})

    async def organisation_docs(self) -> list[Doc]:
        """Every organisation, ordered by id."""
        return [d async for d in self.db.organisations.find({}).sort("_id", ASCENDING)]

    # -- feed --------------------------------------------------------------------------------------

    async def feed_docs(self, *, before: str | None, recipient_id: str | None, limit: int) -> list[Doc]:
        """Up to `limit` feed entries, newest first, older than the cursor `before`."""
        find: dict[str, Any] = {}
        if before:
            find["cursor"] = {"$lt": before}
        if recipient_id:
            find["recipient_id"] = recipient_id
        return [d async for d in self.db.feed.find(find).sort("cursor", DESCENDING).limit(limit)]

    async def feed_after(self, seq: int, limit: int, *, upto: int | None = None) -> list[Doc]:
        """Feed entries with `seq` after `seq` (and at most `upto`), in insertion order (SSE resume)."""
        bounds: dict[str, int] = {"$gt": seq}
        if upto is not None:
            bounds["$lte"] = upto
        return [d async for d in self.db.feed.find({"seq": bounds}).sort("seq", ASCENDING).limit(limit)]

    async def latest_feed_seq(self) -> int:
        """The highest insertion sequence in the feed (0 when empty)."""
        top = await self.db.feed.find_one({}, {"seq": 1}, sort=[("seq", DESCENDING)])
        return int(top["seq"]) if top and "seq" in top else 0

    async def feed_seq_at_cursor(self, cursor: str) -> int | None:
        """The `seq` of the entry with this cursor, if any."""
        entry = await self.db.feed.find_one({"cursor": cursor}, {"seq": 1})
        return int(entry["seq"]) if entry is not None else None

    async def first_feed_seq_after_cursor(self, cursor: str) -> int | None:
        """The lowest `seq` among entries with a later cursor, if any."""
        later = await self.db.feed.find_one({"cursor": {"$gt": cursor}}, {"seq": 1}, sort=[("seq", ASCENDING)])
        return int(later["seq"]) if later is not None else None

    # -- statistics and coverage gaps --------------------------------------------------------------

    async def counted_recipients(self, ids: Sequence[str] | None = None) -> list[Doc]:
        """Recipients counted in statistics (every one, or those with these ids), ordered by id."""
        if ids is None:
            fields = {"kind": 1, "beneficiaries.households": 1, **dict.fromkeys(AREA_KEYS, 1)}
            return [d async for d in self.db.recipients.find({"status": {"$in": list(COUNTED_STATUSES)}}, fields)]
        docs = self.db.recipients.find({"_id": {"$in": list(ids)}, "status": {"$in": list(COUNTED_STATUSES)}})
        return [d async for d in docs.sort("_id", ASCENDING)]

    async def live_pledge_donors(self) -> list[tuple[str, str, str]]:
        """(recipient, donor, item) of every live pledge, each combination once."""
        rows = await self.db.pledges.aggregate(
            [
                {"$match": {"status": {"$in": list(LIVE_PLEDGE_STATUSES)}}},
                {"$group": {"_id": {"r": "$recipient_id", "d": "$donor_id", "i": "$item"}}},
            ]
        )
        return [(r["_id"]["r"], r["_id"]["d"], r["_id"]["i"]) async for r in rows]

    async def item_totals(self) -> list[Doc]:
        """Per item: needs, requested and delivered quantities."""
        rows = await self.db.needs.aggregate(
            [
                {"$match": NEED_PUBLISHED},
                {
                    "$group": {
                        "_id": "$item",
                        "needs": {"$sum": 1},
                        "requested": {"$sum": "$quantity"},
                        "delivered": {"$sum": "$progress.delivered"},
                    }
                },
            ]
        )
        return [r async for r in rows]

    async def last_deliveries(self, recipient_ids: Sequence[str]) -> dict[str, datetime]:
        """Recipient id -> time of its latest delivery."""
        rows = await self.db.feed.aggregate(
            [
                {"$match": {"kind": "delivered", "recipient_id": {"$in": list(recipient_ids)}}},
                {"$group": {"_id": "$recipient_id", "last": {"$max": "$occurred_at"}}},
            ]
        )
        return {r["_id"]: r["last"] async for r in rows}

    # -- open data ---------------------------------------------------------------------------------

    async def export_docs(self, dataset: str, batch: int) -> AsyncIterator[Doc]:
        """Source documents of an open-data table, streamed from a cursor `batch` at a time."""
        if dataset == "recipients":
            cursor = self.db.recipients.find(PUBLISHED_RECIPIENT).sort("_id", ASCENDING)
        elif dataset == "needs":
            cursor = self.db.needs.find(NEED_PUBLISHED).sort("_id", ASCENDING)
        else:
            cursor = self.db.feed.find({"kind": "delivered"}).sort("cursor", ASCENDING)
        async for doc in cursor.batch_size(batch):
            yield doc

    async def revision(self) -> str:
        """A fingerprint that changes whenever any read model changes (versions only grow; feed only grows)."""
        parts: list[Any] = []
        for name, fields in (
            # The figures and state checks too: a repaired view keeps its version but not its content.
            ("recipients", ("version", "state_check")),
            ("needs", ("version", "state_check", "ledger_version", "progress.requested", "progress.committed",
                       "progress.in_transit", "progress.delivered")),
            ("organisations", ("version", "state_check")),
            ("donors", ("version", "state_check")),
            ("feed", ()),
        ):
            group: dict[str, Any] = {"_id": None, "n": {"$sum": 1}}
            keys = [f.replace(".", "_") for f in fields]
            group |= {key: {"$sum": f"${f}"} for key, f in zip(keys, fields, strict=True)}
            rows = [r async for r in await self.db[name].aggregate([{"$group": group}])]
            parts.append([rows[0].get(k) for k in ("n", *keys)] if rows else [0])
        return str(parts)
