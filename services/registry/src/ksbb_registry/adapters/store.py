"""MongoDB side of the registry: collections and their indexes, documents <-> aggregates, and the guarded
single-document write that carries a change's events in the same write (outbox without transactions)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar

from ksbb_kit.errors import ApiError
from ksbb_kit.http import decode_cursor, encode_cursor
from ksbb_kit.outbox import OUTBOX, PENDING, PendingWrite, new_document, tombstone_entry, with_outbox
from pydantic import BaseModel
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_registry.adapters.due import DUE, DueEntries, due_time
from ksbb_registry.app.ports import Clock, Decide, ListQuery, Page
from ksbb_registry.domain.change import Change
from ksbb_registry.domain.errors import ConcurrentChange, InvalidCursor

Doc = dict[str, Any]
A = TypeVar("A", bound=BaseModel)
#: Turns events into outbox entries (the runtime's `events`), to embed in the same write.
OutboxEntries = Callable[..., list[Doc]]
#: Bookkeeping fields never returned to callers.
HIDDEN = {OUTBOX: 0, PENDING: 0, "_outbox_lease": 0, "_applied": 0}

#: The index of the version-guarded writes (`{_id, version}`, see `AggregateCollection.update`). Unique, and
#: trivially so (`_id` alone is): mongo-java-server looks a filter up in an index only when the index has exactly
#: the filter's fields and is unique, so without it every guarded write scans the whole collection there.
VERSION_GUARD = IndexModel([("_id", ASCENDING), ("version", ASCENDING)], unique=True, name="id_version")

#: The indexes the list queries, sweeps and guarded writes need (asserted by the benchmark with list_indexes).
INDEXES: dict[str, list[IndexModel]] = {
    "organisations": [IndexModel([("status", ASCENDING), ("_id", ASCENDING)], name="status_id"), VERSION_GUARD],
    "recipients": [
        VERSION_GUARD,
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
        VERSION_GUARD,
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
    # `DueEntries.drop`/`settle` write guarded by the entry's revision (the same reason as `VERSION_GUARD`).
    DUE: [IndexModel([("_id", ASCENDING), ("rev", ASCENDING)], unique=True, name="id_rev")],
}


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """Create the declared indexes (idempotent)."""
    for name, models in INDEXES.items():
        await db[name].create_indexes(models)


def encode(value: Any) -> Any:
    """A domain value as stored: enums by value, calendar dates as ISO strings, models as sub-documents."""
    if isinstance(value, BaseModel):
        return encode(value.model_dump())
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return value


class Documents(Generic[A]):
    """How one aggregate type maps to documents: its id field is stored as `_id`."""

    def __init__(self, model: type[A], id_field: str) -> None:
        self.model = model
        self.id_field = id_field

    def load(self, document: Doc) -> A:
        """The aggregate of a stored document."""
        return self.model.model_validate({**document, self.id_field: document["_id"]})

    def dump(self, aggregate: A) -> Doc:
        """The document of an aggregate."""
        fields = aggregate.model_dump(exclude={self.id_field})
        return {"_id": getattr(aggregate, self.id_field), **encode(fields)}

    def query(self, query: ListQuery) -> Doc:
        """The MongoDB filter of a list query."""
        found: Doc = {
            "_id" if name == self.id_field else name: encode(value) for name, value in query.equals.items()
        }
        if query.ids_in is not None:
            found["_id"] = {"$in": query.ids_in}
        if query.ids_not_in is not None:
            found["_id"] = {"$nin": query.ids_not_in}
        return found


async def page_of(
    collection: AsyncCollection[Doc], query: Doc, page: Page, projection: Doc
) -> tuple[list[Doc], str | None]:
    """One page of documents sorted by `_id`, and the cursor of the next page."""
    if page.cursor:
        try:
            values = decode_cursor(page.cursor)
        except ApiError as exc:
            raise InvalidCursor() from exc
        if len(values) != 1 or not isinstance(values[0], str):
            raise InvalidCursor()
        id_filter = {"$gt": values[0]}
        query = {"$and": [query, {"_id": id_filter}]} if "_id" in query else {**query, "_id": id_filter}
    docs = (
        await collection.find(query, projection=projection)
        .sort("_id", ASCENDING)
        .limit(page.limit + 1)
        .to_list()
    )
    next_cursor = encode_cursor([docs[page.limit - 1]["_id"]]) if len(docs) > page.limit else None
    return docs[: page.limit], next_cursor


class AggregateCollection(Generic[A]):
    """A collection of one aggregate type whose changes and events are written together."""

    #: Projection of list pages (subclasses leave out what lists never show).
    list_projection: ClassVar[Doc] = HIDDEN
    #: Fields whose value makes a document work for a sweep; entries in `sweep_due` follow them.
    due_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        collection: AsyncCollection[Doc],
        documents: Documents[A],
        *,
        clock: Clock,
        outbox: OutboxEntries,
        pending: PendingWrite,
        attempts: int = 8,
    ) -> None:
        self.collection = collection
        self.documents = documents
        self.clock = clock
        self.outbox = outbox
        self.pending = pending
        self.attempts = attempts

    def _entries(self, change: Change[A]) -> list[Doc]:
        """Outbox entries of a change: its events, then its tombstones."""
        entries = self.outbox(*change.events)
        entries += [tombstone_entry(erasure.topic.name, erasure.key) for erasure in change.erasures]
        return entries

    async def get(self, aggregate_id: str) -> A | None:
        """The aggregate, or None."""
        document = await self.collection.find_one({"_id": aggregate_id}, projection=HIDDEN)
        return None if document is None else self.documents.load(document)

    async def insert(self, change: Change[A]) -> tuple[A, bool]:
        """Insert a new aggregate with its first events; an existing id (retried create) returns it."""
        document = self.documents.dump(change.after)
        entries = self._entries(change)
        await self._due_before(document["_id"], {f: document.get(f) for f in self.due_fields if document.get(f)}, ())
        async with self.pending(self.collection.name, document["_id"], entries):
            return await self._insert_marked(change, document, entries)

    @contextlib.asynccontextmanager
    async def announced(self, aggregate_id: str) -> AsyncIterator[Callable[[Change[A]], Awaitable[tuple[A, bool]]]]:
        """The outbox marker of an aggregate about to be inserted, left on entering (so a caller can leave it
        alongside its other reads and claims); yields the insert, which then is one round trip. The relay gets
        the aggregate on leaving, written or not (when nothing was written it finds nothing and drops the
        marker, as after a crash between marker and write)."""
        async with self.pending(self.collection.name, aggregate_id, [{"announced": aggregate_id}]):

            async def insert(change: Change[A]) -> tuple[A, bool]:
                document = self.documents.dump(change.after)
                if document["_id"] != aggregate_id:
                    raise ValueError(f"announced {aggregate_id}, inserting {document['_id']}")
                due = {f: document.get(f) for f in self.due_fields if document.get(f)}
                await self._due_before(aggregate_id, due, ())
                return await self._insert_marked(change, document, self._entries(change))

            yield insert

    async def _insert_marked(self, change: Change[A], document: Doc, entries: list[Doc]) -> tuple[A, bool]:
        """The insert itself, its outbox marker already left; an existing id returns the stored aggregate."""
        try:
            await self.collection.insert_one(new_document(document, entries))
        except DuplicateKeyError:
            existing = await self.get(document["_id"])
            if existing is None:
                raise
            return existing, False
        return change.after, True

    async def update(self, aggregate_id: str, decide: Decide[A]) -> tuple[A, bool] | None:
        """Read, decide, and write guarded by the version read (retrying on a concurrent change).

        `decide(aggregate, next_version)` returns the change (state + events, one document write) or None
        for no change; it raises to refuse. Returns the aggregate after and whether a write happened, or
        None if the aggregate does not exist.
        """
        now = self.clock.now()
        for _ in range(self.attempts):
            document = await self.collection.find_one({"_id": aggregate_id}, projection=HIDDEN)
            if document is None:
                return None
            version = int(document["version"])
            current = self.documents.load(document)
            change = decide(current, version + 1)
            if change is None:
                return current, False
            values = encode(change.after.model_dump(include=set(change.fields)))
            update: Doc = {
                "$set": {
                    **{name: values[name] for name in change.fields},
                    "version": version + 1,
                    "updated_at": now,
                }
            }
            if change.cleared:
                update["$unset"] = {name: "" for name in change.cleared}
            if change.appended:
                update["$push"] = {name: encode(entry) for name, entry in change.appended}
            entries = self._entries(change)
            ending = await self._due_before(aggregate_id, update["$set"], change.cleared)
            async with self.pending(self.collection.name, aggregate_id, entries):
                written = await self.collection.find_one_and_update(
                    {"_id": aggregate_id, "version": version},
                    with_outbox(update, entries),
                    projection=HIDDEN,
                    return_document=ReturnDocument.AFTER,
                )
            if written is not None:
                for name, rev in ending.items():
                    await self.due(name).drop(aggregate_id, rev)
                return self.documents.load(written), True
        raise ConcurrentChange("the resource is changing too often; try again")

    async def restate(self, aggregate_id: str, announce: Callable[[A], Any]) -> bool:
        """Publish `announce(aggregate)` with the aggregate unchanged (only `restated_at` is set), guarded by
        the version read: it joins the outbox in order with the aggregate's changes and never overtakes one."""
        for _ in range(self.attempts):
            document = await self.collection.find_one({"_id": aggregate_id}, projection=HIDDEN)
            if document is None:
                return False
            version = int(document["version"])
            entries = self.outbox(announce(self.documents.load(document)))
            update = with_outbox({"$set": {"restated_at": self.clock.now()}}, entries)
            async with self.pending(self.collection.name, aggregate_id, entries):
                written = await self.collection.update_one({"_id": aggregate_id, "version": version}, update)
            if written.matched_count:
                return True
        raise ConcurrentChange("the resource is changing too often; try again")

    def due(self, name: str) -> DueEntries:
        """The sweep entries that follow one of `due_fields` (see `adapters.due`)."""
        return DueEntries(self.collection.database, f"{self.collection.name}.{name}")

    async def _due_before(self, aggregate_id: str, setting: Doc, clearing: Any) -> dict[str, str | None]:
        """Entries for the due fields a write sets, before it; the revisions of those it clears (dropped after)."""
        ending: dict[str, str | None] = {}
        for name in self.due_fields:
            if setting.get(name):
                await self.due(name).put(aggregate_id, due_time(setting[name]))
            elif name in setting or name in clearing:
                ending[name] = await self.due(name).seen(aggregate_id)
        return ending

    async def adopt_due(self) -> None:
        """Entries for documents made due before entries existed (one query per due field, once per start)."""
        for name in self.due_fields:
            found = self.collection.find({name: {"$nin": [None, False]}}, {name: 1})
            await self.due(name).adopt([(d["_id"], due_time(d[name])) async for d in found])

    async def find(self, query: ListQuery, page: Page) -> tuple[list[A], str | None]:
        """One page sorted by id, and the cursor of the next page."""
        docs, next_cursor = await page_of(
            self.collection, self.documents.query(query), page, self.list_projection
        )
        return [self.documents.load(document) for document in docs], next_cursor
