"""MongoDB store of concern reports and the counters of their rate limit (internal: no events)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ksbb_registry.adapters.store import HIDDEN, Doc, Documents, encode, page_of
from ksbb_registry.app.ports import ListQuery, Page
from ksbb_registry.domain.reports import Report

REPORT_DOCUMENTS = Documents(Report, "report_id")
#: What a resolution writes.
_RESOLUTION_FIELDS = {"status", "resolved_at", "resolved_by", "outcome", "resolution_note"}


class ReportCollection:
    """The `reports` collection."""

    def __init__(self, collection: AsyncCollection[Doc]) -> None:
        self.collection = collection
        self.documents = REPORT_DOCUMENTS

    async def get(self, report_id: str) -> Report | None:
        """The report, or None."""
        document = await self.collection.find_one({"_id": report_id})
        return None if document is None else self.documents.load(document)

    async def insert(self, report: Report) -> Report:
        """Store a new report; an existing id (a retried submission) returns the stored one."""
        try:
            await self.collection.insert_one(self.documents.dump(report))
        except DuplicateKeyError:
            found = await self.get(report.report_id)
            if found is None:
                raise
            return found
        return report

    async def resolve_if_open(self, resolved: Report) -> Report | None:
        """Write a resolution if the report is still open; None if it was resolved already."""
        written = await self.collection.find_one_and_update(
            {"_id": resolved.report_id, "status": "open"},
            {"$set": encode(resolved.model_dump(include=_RESOLUTION_FIELDS))},
            return_document=ReturnDocument.AFTER,
        )
        return None if written is None else self.documents.load(written)

    async def find(self, query: ListQuery, page: Page) -> tuple[list[Report], str | None]:
        """One page sorted by id, and the next page's cursor."""
        docs, next_cursor = await page_of(self.collection, self.documents.query(query), page, HIDDEN)
        return [self.documents.load(document) for document in docs], next_cursor


class RateCounters:
    """The `report_rate` collection: one counter per client and window, swept once the window ended."""

    def __init__(self, collection: AsyncCollection[Doc]) -> None:
        self.collection = collection

    async def hit(self, key: str, window_end: datetime) -> int:
        """Count one more hit on `key` (atomic upsert); returns the count including it."""
        counter = await self.collection.find_one_and_update(
            {"_id": key},
            {"$inc": {"count": 1}, "$setOnInsert": {"window_end": window_end}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return 0 if counter is None else int(counter["count"])

    async def forget_ended(self, now: datetime) -> int:
        """Drop the counters of windows that ended before `now`."""
        result = await self.collection.delete_many({"window_end": {"$lt": now}})
        return result.deleted_count
