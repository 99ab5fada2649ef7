"""MongoDB collections of the registry, their indexes, and the optimistic single-document write helper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ksbb_kit.errors import ApiError
from ksbb_kit.outbox import OUTBOX, PENDING, with_outbox
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
#: Bookkeeping fields never returned to callers.
HIDDEN = {OUTBOX: 0, PENDING: 0, "_outbox_lease": 0, "_applied": 0}

#: The indexes the list queries and sweeps need (asserted by the benchmark with list_indexes).
INDEXES: dict[str, list[IndexModel]] = {
    "organisations": [IndexModel([("status", ASCENDING), ("_id", ASCENDING)], name="status_id")],
    "recipients": [
        IndexModel([("organisation_id", ASCENDING), ("_id", ASCENDING)], name="org_id"),
        IndexModel([("status", ASCENDING), ("_id", ASCENDING)], name="status_id"),
        IndexModel([("kota_code", ASCENDING), ("_id", ASCENDING)], name="kota_id"),
        IndexModel([("kecamatan_code", ASCENDING), ("_id", ASCENDING)], name="kecamatan_id"),
        IndexModel([("kelurahan_code", ASCENDING), ("_id", ASCENDING)], name="kelurahan_id"),
        IndexModel([("kind", ASCENDING), ("_id", ASCENDING)], name="kind_id"),
        IndexModel([("identity_key", ASCENDING)], name="identity_key"),
        IndexModel([("rw_key", ASCENDING)], name="rw_key"),
        IndexModel([("pending_need_closure", ASCENDING)], name="pending_need_closure"),
    ],
    "needs": [
        IndexModel([("recipient_id", ASCENDING), ("status", ASCENDING)], name="recipient_status"),
        IndexModel(
            [("organisation_id", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)], name="org_status_id"
        ),
        IndexModel([("status", ASCENDING), ("_id", ASCENDING)], name="status_id"),
        IndexModel(
            [("kota_code", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)], name="kota_status_id"
        ),
        IndexModel([("series_next_at", ASCENDING)], name="series_next_at"),
    ],
    "reports": [
        IndexModel([("recipient_id", ASCENDING), ("_id", ASCENDING)], name="recipient_id"),
        IndexModel(
            [("organisation_id", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)], name="org_status_id"
        ),
    ],
    "report_rate": [IndexModel([("window_end", ASCENDING)], name="window_end")],
}


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """Create the declared indexes (idempotent)."""
    for name, models in INDEXES.items():
        await db[name].create_indexes(models)


@dataclass
class Change:
    """What one optimistic write does: fields to set/unset, array pushes, and the events to emit."""

    set: Doc = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)
    push: Doc = field(default_factory=dict)
    entries: list[Doc] = field(default_factory=list)


Decide = Callable[[Doc, int], Change | None]


async def mutate(
    collection: AsyncCollection[Doc],
    doc_id: str,
    decide: Decide,
    *,
    now: Any,
    wake: Callable[[], None],
    not_found: str = "not_found",
    attempts: int = 8,
) -> tuple[Doc, bool]:
    """Read, decide, and write guarded by the version read (retrying on a concurrent change).

    `decide(doc, next_version)` returns the change (state + events, one document write) or None for
    no-op; it raises ApiError to refuse (e.g. 412 when If-Match names an older version). Returns the
    resulting document and whether a write happened.
    """
    for _ in range(attempts):
        doc = await collection.find_one({"_id": doc_id}, projection=HIDDEN)
        if doc is None:
            raise ApiError(404, not_found, f"{doc_id} does not exist", field="id")
        version = int(doc["version"])
        change = decide(doc, version + 1)
        if change is None:
            return doc, False
        update: Doc = {"$set": {**change.set, "version": version + 1, "updated_at": now}}
        if change.unset:
            update["$unset"] = {name: "" for name in change.unset}
        if change.push:
            update["$push"] = dict(change.push)
        written = await collection.find_one_and_update(
            {"_id": doc_id, "version": version},
            with_outbox(update, change.entries),
            projection=HIDDEN,
            return_document=ReturnDocument.AFTER,
        )
        if written is not None:
            if change.entries:
                wake()
            return written, True
    raise ApiError(409, "concurrent_update", "the resource is changing too often; try again")
