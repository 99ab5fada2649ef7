"""Read side of the public read models: lists, details, feed rendering, statistics, coverage gaps, exports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_publisher.domain.feed import donor_label

#: Recipient states shown publicly; unverified registrations are not published.
PUBLIC_RECIPIENT_STATUSES = ("verified", "active", "suspended", "archived")
#: Recipients counted in statistics.
COUNTED_STATUSES = ("verified", "active", "suspended")
LIVE_PLEDGE_STATUSES = ("pledged", "confirmed", "dispatched", "delivered")
AREA_KEYS = (
    "provinsi_code",
    "provinsi_name",
    "kota_code",
    "kota_name",
    "kecamatan_code",
    "kecamatan_name",
    "kelurahan_code",
    "kelurahan_name",
)
BATCH = 500


def _area(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in AREA_KEYS}


def progress_of(need: dict[str, Any]) -> dict[str, Any]:
    """Requested / committed / in transit / delivered of a need, with remaining quantity and percentages."""
    ledger = need.get("progress") or {}
    requested = ledger.get("requested") or need.get("quantity") or 0
    committed = ledger.get("committed", 0)
    in_transit = ledger.get("in_transit", 0)
    delivered = ledger.get("delivered", 0)
    remaining = max(0, requested - committed - in_transit - delivered)

    def pct(value: int) -> int:
        return min(100, round(100 * value / requested)) if requested else 0

    return {
        "requested": requested,
        "committed": committed,
        "in_transit": in_transit,
        "delivered": delivered,
        "remaining": remaining,
        "percent_delivered": pct(delivered),
        "percent_pledged": pct(committed + in_transit + delivered),
    }


class ReadQueries:
    """Queries over the read models; everything returned is public."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    # -- lookups ---------------------------------------------------------------------------------

    async def organisation_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Organisation id -> name."""
        wanted = sorted(set(ids))
        docs = self.db.organisations.find({"_id": {"$in": wanted}}, {"name": 1})
        return {d["_id"]: d["name"] async for d in docs}

    async def recipient_summaries(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Recipient id -> name, RW and households (public recipients only)."""
        wanted = sorted(set(ids))
        docs = self.db.recipients.find(
            {"_id": {"$in": wanted}, "status": {"$in": list(PUBLIC_RECIPIENT_STATUSES)}},
            {"name": 1, "rw": 1, "beneficiaries": 1},
        )
        return {d["_id"]: d async for d in docs}

    async def donor_names(self, ids: Iterable[str]) -> dict[str, str | None]:
        """Donor id -> display name if the donor opted in (absent otherwise)."""
        wanted = sorted(set(ids))
        docs = self.db.donors.find({"_id": {"$in": wanted}}, {"display_name": 1})
        return {d["_id"]: d.get("display_name") async for d in docs}

    async def open_need_counts(self, recipient_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Recipient id -> number of open needs."""
        match: dict[str, Any] = {"status": "open", "version": {"$exists": True}}
        if recipient_ids is not None:
            match["recipient_id"] = {"$in": sorted(set(recipient_ids))}
        rows = await self.db.needs.aggregate(
            [
                {"$match": match},
                {"$group": {"_id": "$recipient_id", "n": {"$sum": 1}}},
            ]
        )
        return {r["_id"]: r["n"] async for r in rows}

    async def delivered_by_recipient(self, recipient_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Recipient id -> packages delivered (from the need ledgers)."""
        match: dict[str, Any] = {"progress.delivered": {"$gt": 0}}
        if recipient_ids is not None:
            match["recipient_id"] = {"$in": sorted(set(recipient_ids))}
        rows = await self.db.needs.aggregate(
            [
                {"$match": match},
                {"$group": {"_id": "$recipient_id", "n": {"$sum": "$progress.delivered"}}},
            ]
        )
        return {r["_id"]: r["n"] async for r in rows}

    # -- recipients and needs ----------------------------------------------------------------------

    def public_recipient(
        self,
        doc: dict[str, Any],
        org_names: dict[str, str],
        open_needs: dict[str, int],
        delivered: dict[str, int],
    ) -> dict[str, Any]:
        """The public view of a recipient document."""
        households = (doc.get("beneficiaries") or {}).get("households", 0)
        return {
            "recipient_id": doc["_id"],
            "name": doc["name"],
            "kind": doc["kind"],
            "kind_description": doc.get("kind_description"),
            "organisation_id": doc["organisation_id"],
            "organisation_name": org_names.get(doc["organisation_id"]),
            "area": _area(doc),
            "rw": doc.get("rw"),
            "beneficiaries": doc.get("beneficiaries") or {},
            "status": doc["status"],
            "open_needs": open_needs.get(doc["_id"], 0),
            "packages_delivered": delivered.get(doc["_id"], 0),
            "households_reached": households if delivered.get(doc["_id"], 0) > 0 else 0,
            "updated_at": doc.get("updated_at"),
        }

    async def recipients(
        self,
        *,
        kota: str | None = None,
        kecamatan: str | None = None,
        kelurahan: str | None = None,
        kind: str | None = None,
        has_open_needs: bool | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of public recipients ordered by id, and the id to continue after."""
        query: dict[str, Any] = {"status": status if status else {"$in": list(PUBLIC_RECIPIENT_STATUSES)}}
        for field, value in (
            ("kota_code", kota),
            ("kecamatan_code", kecamatan),
            ("kelurahan_code", kelurahan),
            ("kind", kind),
        ):
            if value:
                query[field] = value
        if has_open_needs is not None:
            with_open = sorted(await self.open_need_counts())
            query["_id"] = {"$in": with_open} if has_open_needs else {"$nin": with_open}
        if after:
            query.setdefault("_id", {})["$gt"] = after
        docs = [d async for d in self.db.recipients.find(query).sort("_id", ASCENDING).limit(limit + 1)]
        more = len(docs) > limit
        docs = docs[:limit]
        ids = [d["_id"] for d in docs]
        orgs = await self.organisation_names(d["organisation_id"] for d in docs)
        open_needs = await self.open_need_counts(ids)
        delivered = await self.delivered_by_recipient(ids)
        items = [self.public_recipient(d, orgs, open_needs, delivered) for d in docs]
        return items, (ids[-1] if more and ids else None)

    async def recipient(self, recipient_id: str) -> dict[str, Any] | None:
        """One public recipient with its needs."""
        doc = await self.db.recipients.find_one(
            {"_id": recipient_id, "status": {"$in": list(PUBLIC_RECIPIENT_STATUSES)}}
        )
        if doc is None:
            return None
        orgs = await self.organisation_names([doc["organisation_id"]])
        result = self.public_recipient(
            doc,
            orgs,
            await self.open_need_counts([recipient_id]),
            await self.delivered_by_recipient([recipient_id]),
        )
        result["needs"], _ = await self.needs(recipient_id=recipient_id, limit=200)
        return result

    def public_need(
        self, doc: dict[str, Any], recipients: dict[str, dict[str, Any]], org_names: dict[str, str]
    ) -> dict[str, Any]:
        """The public view of a need document."""
        return {
            "need_id": doc["_id"],
            "recipient_id": doc["recipient_id"],
            "recipient_name": (recipients.get(doc["recipient_id"]) or {}).get("name"),
            "organisation_id": doc.get("organisation_id"),
            "organisation_name": org_names.get(doc.get("organisation_id") or ""),
            "area": _area(doc),
            "rw": doc.get("rw"),
            "item": doc["item"],
            "item_description": doc.get("item_description"),
            "quantity": doc["quantity"],
            "unit": doc["unit"],
            "priority": doc["priority"],
            "needed_by": doc["needed_by"],
            "recurrence": doc.get("recurrence"),
            "status": doc["status"],
            "progress": progress_of(doc),
            "updated_at": doc.get("updated_at"),
        }

    async def needs(
        self,
        *,
        recipient_id: str | None = None,
        status: str | None = None,
        item: str | None = None,
        kota: str | None = None,
        kecamatan: str | None = None,
        kelurahan: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of needs (of public recipients) ordered by id."""
        query: dict[str, Any] = {"version": {"$exists": True}}
        for field, value in (
            ("recipient_id", recipient_id),
            ("status", status),
            ("item", item),
            ("kota_code", kota),
            ("kecamatan_code", kecamatan),
            ("kelurahan_code", kelurahan),
        ):
            if value:
                query[field] = value
        if after:
            query["_id"] = {"$gt": after}
        # Needs of unpublished recipients are skipped, so read in chunks until one more than a page is found.
        docs: list[dict[str, Any]] = []
        recipients: dict[str, dict[str, Any]] = {}
        chunk: list[dict[str, Any]] = []

        async def keep_public() -> None:
            recipients.update(await self.recipient_summaries(d["recipient_id"] for d in chunk))
            docs.extend(d for d in chunk if d["recipient_id"] in recipients)
            chunk.clear()

        async for doc in self.db.needs.find(query).sort("_id", ASCENDING).batch_size(limit + 1):
            chunk.append(doc)
            if len(chunk) > limit:
                await keep_public()
                if len(docs) > limit:
                    break
        await keep_public()
        more = len(docs) > limit
        docs = docs[:limit]
        orgs = await self.organisation_names(d.get("organisation_id") or "" for d in docs)
        items = [self.public_need(d, recipients, orgs) for d in docs]
        return items, (items[-1]["need_id"] if more and items else None)

    async def need(self, need_id: str) -> dict[str, Any] | None:
        """One public need."""
        doc = await self.db.needs.find_one({"_id": need_id, "version": {"$exists": True}})
        if doc is None:
            return None
        recipients = await self.recipient_summaries([doc["recipient_id"]])
        if doc["recipient_id"] not in recipients:
            return None
        return self.public_need(
            doc, recipients, await self.organisation_names([doc.get("organisation_id") or ""])
        )

    async def organisations(self) -> list[dict[str, Any]]:
        """Every facilitator organisation (public facts)."""
        docs = self.db.organisations.find({}).sort("_id", ASCENDING)
        return [
            {
                "organisation_id": d["_id"],
                "name": d["name"],
                "kind": d["kind"],
                "status": d["status"],
                "area_codes": d.get("area_codes", []),
            }
            async for d in docs
        ]

    # -- feed --------------------------------------------------------------------------------------

    async def render_feed(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Public feed entries: donor names resolved now (so an opt-out applies to history too)."""
        donors = await self.donor_names(e["donor_id"] for e in entries)
        recipients = await self.recipient_summaries(e["recipient_id"] for e in entries)
        return [
            {
                "id": e["cursor"],
                "seq": e["seq"],
                "kind": e["kind"],
                "pledge_id": e["pledge_id"],
                "need_id": e["need_id"],
                "recipient_id": e["recipient_id"],
                "recipient_name": (recipients.get(e["recipient_id"]) or {}).get("name"),
                "donor_name": donor_label(donors.get(e["donor_id"])),
                "donor_named": bool(donors.get(e["donor_id"])),
                "item": e["item"],
                "quantity": e["quantity"],
                "delivered_quantity": e.get("delivered_quantity"),
                "area": _area(e),
                "occurred_at": e["occurred_at"],
            }
            for e in entries
        ]

    async def feed(
        self,
        *,
        before: str | None = None,
        limit: int = 50,
        recipient_id: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of feed entries, newest first, and the cursor to continue before."""
        query: dict[str, Any] = {}
        if before:
            query["cursor"] = {"$lt": before}
        if recipient_id:
            query["recipient_id"] = recipient_id
        docs = [d async for d in self.db.feed.find(query).sort("cursor", DESCENDING).limit(limit + 1)]
        more = len(docs) > limit
        docs = docs[:limit]
        return await self.render_feed(docs), (docs[-1]["cursor"] if more and docs else None)

    async def feed_after(
        self, seq: int, limit: int = 1000, *, upto: int | None = None
    ) -> list[dict[str, Any]]:
        """Raw feed entries with `seq` after `seq` (and at most `upto`), in insertion order (SSE resume)."""
        bounds: dict[str, int] = {"$gt": seq}
        if upto is not None:
            bounds["$lte"] = upto
        docs = self.db.feed.find({"seq": bounds}).sort("seq", ASCENDING).limit(limit)
        return [d async for d in docs]

    async def latest_feed_seq(self) -> int:
        """The highest insertion sequence in the feed (0 when empty)."""
        top = await self.db.feed.find_one({}, {"seq": 1}, sort=[("seq", DESCENDING)])
        return int(top["seq"]) if top and "seq" in top else 0

    async def resume_point(self, last_event_id: str) -> int | None:
        """The `seq` to resume after, from an SSE id; None when it is not one of ours.

        Current ids are the `seq` (digits). Ids from before `seq` existed are feed cursors: resume after
        that entry's seq, or — when it is unknown — just before the first entry with a later cursor.
        """
        value = last_event_id.strip()
        if value.isdigit():
            return int(value)
        if "~" not in value:
            return None
        entry = await self.db.feed.find_one({"cursor": value}, {"seq": 1})
        if entry is not None:
            return int(entry["seq"])
        later = await self.db.feed.find_one({"cursor": {"$gt": value}}, {"seq": 1}, sort=[("seq", ASCENDING)])
        return int(later["seq"]) - 1 if later is not None else await self.latest_feed_seq()

    # -- statistics and coverage gaps --------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        """Recipients, households targeted and reached, packages delivered and donors per dimension."""
        recipients = [
            d
            async for d in self.db.recipients.find(
                {"status": {"$in": list(COUNTED_STATUSES)}},
                {"kind": 1, "beneficiaries.households": 1, **dict.fromkeys(AREA_KEYS, 1)},
            )
        ]
        delivered = await self.delivered_by_recipient()
        donor_rows = await self.db.pledges.aggregate(
            [
                {"$match": {"status": {"$in": list(LIVE_PLEDGE_STATUSES)}}},
                {"$group": {"_id": {"r": "$recipient_id", "d": "$donor_id", "i": "$item"}}},
            ]
        )
        donors_of: dict[str, set[str]] = {}
        donors_by_item: dict[str, set[str]] = {}
        all_donors: set[str] = set()
        async for row in donor_rows:
            key = row["_id"]
            donors_of.setdefault(key["r"], set()).add(key["d"])
            donors_by_item.setdefault(key["i"], set()).add(key["d"])
            all_donors.add(key["d"])

        def empty(code: str, name: str | None) -> dict[str, Any]:
            return {
                "code": code,
                "name": name,
                "recipients": 0,
                "households_targeted": 0,
                "households_reached": 0,
                "packages_delivered": 0,
                "donors": set(),
            }

        dims: dict[str, dict[str, dict[str, Any]]] = {
            "kota": {},
            "kecamatan": {},
            "kelurahan": {},
            "kind": {},
        }
        total = empty("31", "Daerah Khusus Ibukota Jakarta")
        for r in recipients:
            households = (r.get("beneficiaries") or {}).get("households", 0)
            got = delivered.get(r["_id"], 0)
            keys = {
                "kota": (r.get("kota_code"), r.get("kota_name")),
                "kecamatan": (r.get("kecamatan_code"), r.get("kecamatan_name")),
                "kelurahan": (r.get("kelurahan_code"), r.get("kelurahan_name")),
                "kind": (r["kind"], None),
            }
            for dim, (code, name) in keys.items():
                row = dims[dim].setdefault(str(code), empty(str(code), name))
                for target in (row, total) if dim == "kota" else (row,):
                    target["recipients"] += 1
                    target["households_targeted"] += households
                    target["households_reached"] += households if got > 0 else 0
                    target["packages_delivered"] += got
                    target["donors"] |= donors_of.get(r["_id"], set())
        item_rows = await self.db.needs.aggregate(
            [
                {"$match": {"version": {"$exists": True}}},
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
        by_item = sorted(
            (
                [
                    {
                        "code": r["_id"],
                        "needs": r["needs"],
                        "requested": r["requested"],
                        "packages_delivered": r["delivered"],
                        "donors": len(donors_by_item.get(r["_id"], set())),
                    }
                    async for r in item_rows
                ]
            ),
            key=lambda x: x["code"],
        )

        def finish(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
            return [{**row, "donors": len(row["donors"])} for _, row in sorted(rows.items())]

        total_row = {**total, "donors": len(all_donors)}
        return {
            "totals": total_row,
            "by_kota": finish(dims["kota"]),
            "by_kecamatan": finish(dims["kecamatan"]),
            "by_kelurahan": finish(dims["kelurahan"]),
            "by_kind": finish(dims["kind"]),
            "by_item": by_item,
        }

    async def coverage_gaps(self, now: datetime, days: int) -> dict[str, Any]:
        """Recipients (and their areas) with open needs and no delivery in the last `days` days."""
        since = now - timedelta(days=days)
        open_needs = await self.open_need_counts()
        last_rows = await self.db.feed.aggregate(
            [
                {"$match": {"kind": "delivered", "recipient_id": {"$in": sorted(open_needs)}}},
                {"$group": {"_id": "$recipient_id", "last": {"$max": "$occurred_at"}}},
            ]
        )
        last = {r["_id"]: r["last"] async for r in last_rows}
        docs = self.db.recipients.find(
            {"_id": {"$in": sorted(open_needs)}, "status": {"$in": list(COUNTED_STATUSES)}}
        ).sort("_id", ASCENDING)
        gaps = []
        async for doc in docs:
            when = last.get(doc["_id"])
            if when is not None and when >= since:
                continue
            gaps.append(
                {
                    "recipient_id": doc["_id"],
                    "name": doc["name"],
                    "kind": doc["kind"],
                    "area": _area(doc),
                    "rw": doc.get("rw"),
                    "households": (doc.get("beneficiaries") or {}).get("households", 0),
                    "open_needs": open_needs[doc["_id"]],
                    "last_delivery_at": when,
                }
            )
        areas: dict[str, dict[str, dict[str, Any]]] = {"kota": {}, "kecamatan": {}, "kelurahan": {}}
        for gap in gaps:
            for level in areas:
                code, name = gap["area"][f"{level}_code"], gap["area"][f"{level}_name"]
                row = areas[level].setdefault(
                    code, {"code": code, "name": name, "recipients": 0, "households": 0}
                )
                row["recipients"] += 1
                row["households"] += gap["households"]
        return {
            "days": days,
            "since": since,
            "recipients": gaps,
            "areas": {level: [rows[c] for c in sorted(rows)] for level, rows in areas.items()},
        }

    # -- open data ---------------------------------------------------------------------------------

    async def export_records(self, dataset: str) -> AsyncIterator[dict[str, Any]]:
        """Flat records of one open-data table, streamed in batches from a Mongo cursor."""
        if dataset == "recipients":
            cursor = (
                self.db.recipients.find({"status": {"$in": list(PUBLIC_RECIPIENT_STATUSES)}})
                .sort("_id", ASCENDING)
                .batch_size(BATCH)
            )
        elif dataset == "needs":
            cursor = (
                self.db.needs.find({"version": {"$exists": True}}).sort("_id", ASCENDING).batch_size(BATCH)
            )
        else:
            cursor = self.db.feed.find({"kind": "delivered"}).sort("cursor", ASCENDING).batch_size(BATCH)
        batch: list[dict[str, Any]] = []
        async for doc in cursor:
            batch.append(doc)
            if len(batch) >= BATCH:
                for record in await self._flatten(dataset, batch):
                    yield record
                batch = []
        if batch:
            for record in await self._flatten(dataset, batch):
                yield record

    async def _flatten(self, dataset: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        orgs = await self.organisation_names(d.get("organisation_id") or "" for d in docs)
        if dataset == "recipients":
            ids = [d["_id"] for d in docs]
            open_needs, delivered = await self.open_need_counts(ids), await self.delivered_by_recipient(ids)
            records = []
            for d in docs:
                pub = self.public_recipient(d, orgs, open_needs, delivered)
                records.append(
                    {
                        **pub,
                        **pub["area"],
                        "households": pub["beneficiaries"].get("households"),
                        "people": pub["beneficiaries"].get("people"),
                        "updated_at": _iso(d.get("updated_at")),
                    }
                )
            return records
        recipients = await self.recipient_summaries(d["recipient_id"] for d in docs)
        docs = [d for d in docs if d["recipient_id"] in recipients]
        if dataset == "needs":
            records = []
            for d in docs:
                pub = self.public_need(d, recipients, orgs)
                records.append(
                    {**pub, **pub["area"], **pub["progress"], "updated_at": _iso(d.get("updated_at"))}
                )
            return records
        return [
            {
                **_area(d),
                "pledge_id": d["pledge_id"],
                "delivered_at": _iso(d["occurred_at"]),
                "need_id": d["need_id"],
                "recipient_id": d["recipient_id"],
                "recipient_name": recipients[d["recipient_id"]].get("name"),
                "rw": recipients[d["recipient_id"]].get("rw"),
                "organisation_id": d["organisation_id"],
                "organisation_name": orgs.get(d["organisation_id"]),
                "item": d["item"],
                "quantity": d.get("delivered_quantity"),
                "households": (recipients[d["recipient_id"]].get("beneficiaries") or {}).get("households"),
                "status": "delivered",
            }
            for d in docs
        ]


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


async def data_revision(db: AsyncDatabase[dict[str, Any]]) -> str:
    """A fingerprint that changes whenever any read model changes (versions only grow; feed only grows)."""
    parts: list[Any] = []
    for name, fields in (
        ("recipients", ("version",)),
        ("needs", ("version", "ledger_version")),
        ("organisations", ("version",)),
        ("donors", ("version",)),
        ("feed", ()),
    ):
        group: dict[str, Any] = {"_id": None, "n": {"$sum": 1}}
        group |= {f: {"$sum": f"${f}"} for f in fields}
        rows = [r async for r in await db[name].aggregate([{"$group": group}])]
        parts.append([rows[0].get(k) for k in ("n", *fields)] if rows else [0])
    return str(parts)
