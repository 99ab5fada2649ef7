"""MongoDB store of recipient units."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from ksbb_registry.adapters.store import HIDDEN, AggregateCollection, Doc, Documents
from ksbb_registry.domain.recipients import Recipient

#: How recipients are stored (collection `recipients`, id as `_id`).
RECIPIENT_DOCUMENTS = Documents(Recipient, "recipient_id")


class RecipientCollection(AggregateCollection[Recipient]):
    """The `recipients` collection (lists leave out the audit trail)."""

    list_projection: ClassVar[Doc] = {**HIDDEN, "audit": 0}

    async def awaiting_need_closure(self) -> AsyncIterator[Recipient]:
        """Recipients whose suspension or archive has not finished closing their needs."""
        async for document in self.collection.find({"pending_need_closure": True}, projection=HIDDEN):
            yield self.documents.load(document)

    async def need_closure_done(self, recipient_id: str, *, version: int | None = None) -> None:
        """Clear the pending-closure mark (only while the recipient still has `version`, if given)."""
        guard: Doc = {"_id": recipient_id} if version is None else {"_id": recipient_id, "version": version}
        await self.collection.update_one(guard, {"$unset": {"pending_need_closure": ""}})
