"""MongoDB store of needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import ClassVar

from ksbb_contracts.vocab import NeedStatus

from ksbb_registry.adapters.store import HIDDEN, AggregateCollection, Doc, Documents
from ksbb_registry.domain.needs import Need

#: How needs are stored (collection `needs`, id as `_id`).
NEED_DOCUMENTS = Documents(Need, "need_id")
_OPEN = NeedStatus.OPEN.value


class NeedCollection(AggregateCollection[Need]):
    """The `needs` collection."""

    due_fields: ClassVar[tuple[str, ...]] = ("series_next_at",)

    async def open_need_ids(self, recipient_id: str) -> list[str]:
        """Ids of a recipient's open needs."""
        found = self.collection.find({"recipient_id": recipient_id, "status": _OPEN}, projection={"_id": 1})
        return [document["_id"] async for document in found]

    async def recipients_with_open_needs(self, organisation_id: str | None) -> list[str]:
        """Ids of recipients (of one organisation, if given) that have an open need."""
        query: Doc = {"status": _OPEN}
        if organisation_id is not None:
            query["organisation_id"] = organisation_id
        return list(await self.collection.distinct("recipient_id", query))

    async def series_due(self, now: datetime) -> AsyncIterator[Need]:
        """Needs whose series' next period has started by `now` (found through their sweep entries)."""
        due = self.due("series_next_at")
        entries = {e["item"]: e for e in await due.due(now)}
        if not entries:
            return
        async for document in self.collection.find({"_id": {"$in": list(entries)}}, projection=HIDDEN):
            entry = entries.pop(document["_id"])
            next_at = document.get("series_next_at")
            if next_at is None or _aware(next_at) > now:
                await due.settle(entry, next_at)  # a stale entry (a crash between two writes): corrected
                continue
            yield self.documents.load(document)
        for entry in entries.values():
            await due.settle(entry, None)  # the need is gone

    async def end_series_link(self, need_id: str) -> None:
        """The need no longer leads its series (a later period's need does)."""
        due = self.due("series_next_at")
        rev = await due.seen(need_id)
        await self.collection.update_one({"_id": need_id}, {"$unset": {"series_next_at": ""}})
        await due.drop(need_id, rev)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
