"""MongoDB store of recipient units."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import ClassVar

from ksbb_registry.adapters.store import HIDDEN, AggregateCollection, Doc, Documents
from ksbb_registry.domain.recipients import Recipient

#: How recipients are stored (collection `recipients`, id as `_id`).
RECIPIENT_DOCUMENTS = Documents(Recipient, "recipient_id")


class RecipientCollection(AggregateCollection[Recipient]):
    """The `recipients` collection (lists leave out the audit trail)."""

    list_projection: ClassVar[Doc] = {**HIDDEN, "audit": 0}
    due_fields: ClassVar[tuple[str, ...]] = ("pending_need_closure",)

    async def awaiting_need_closure(self) -> AsyncIterator[Recipient]:
        """Recipients whose suspension or archive has not finished closing their needs (through sweep entries)."""
        due = self.due("pending_need_closure")
        entries = {e["item"]: e for e in await due.due(datetime.now(UTC))}
        if not entries:
            return
        async for document in self.collection.find({"_id": {"$in": list(entries)}}, projection=HIDDEN):
            entry = entries.pop(document["_id"])
            if not document.get("pending_need_closure"):
                await due.settle(entry, None)  # finished, but a crash kept its entry
                continue
            yield self.documents.load(document)
        for entry in entries.values():
            await due.settle(entry, None)

    async def need_closure_done(self, recipient_id: str, *, version: int | None = None) -> None:
        """Clear the pending-closure mark (only while the recipient still has `version`, if given)."""
        guard: Doc = {"_id": recipient_id} if version is None else {"_id": recipient_id, "version": version}
        due = self.due("pending_need_closure")
        rev = await due.seen(recipient_id)
        result = await self.collection.update_one(guard, {"$unset": {"pending_need_closure": ""}})
        if result.matched_count:
            await due.drop(recipient_id, rev)
