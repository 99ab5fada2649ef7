"""Donor profiles in MongoDB: each version written with its events in the same single-document write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ksbb_kit.outbox import PendingWrite, new_document, strip_outbox, with_outbox
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_pledges.adapters.outbox import OutboxEntries
from ksbb_pledges.domain.donors import Donor, DonorUpdate


class MongoDonorStore:
    """Creates and updates donor profiles, guarded by their version."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, outbox: OutboxEntries, pending: PendingWrite) -> None:
        self.donors = db["donors"]
        self._outbox = outbox
        self._pending = pending

    async def get(self, donor_id: str) -> Donor | None:
        """A donor profile without outbox bookkeeping."""
        return strip_outbox(await self.donors.find_one({"_id": donor_id}, projection={"_applied": 0}))

    async def put(self, donor_id: str, decide: Callable[[Donor | None], DonorUpdate]) -> Donor:
        """Write the next version `decide` makes of the current profile; a concurrent writer makes us re-decide."""
        while True:
            current = await self.get(donor_id)
            update = decide(current)
            entries = self._outbox(*update.events)
            if current is None:
                document = {"_id": donor_id, **update.fields, "created_at": update.fields["updated_at"]}
                try:
                    async with self._pending("donors", donor_id, entries):
                        await self.donors.insert_one(new_document(document, entries))
                except DuplicateKeyError:
                    continue
            else:
                document = {**current, **update.fields}
                async with self._pending("donors", donor_id, entries):
                    result = await self.donors.update_one(
                        {"_id": donor_id, "version": current["version"]}, with_outbox({"$set": update.fields}, entries)
                    )
                if result.matched_count == 0:
                    continue  # a concurrent update won; apply ours on top of it
            # Read back what is stored now (a later version may already be there); ours if it vanished.
            return await self.get(donor_id) or document

    async def restate(self, donor_id: str, decide: Callable[[Donor], DonorUpdate]) -> bool:
        """Publish `decide`'s restatement of the current profile in a write guarded by its version, so it is
        published in order with the profile's changes; False when there is no profile."""
        while True:
            current = await self.get(donor_id)
            if current is None:
                return False
            update = decide(current)
            entries = self._outbox(*update.events)
            async with self._pending("donors", donor_id, entries):
                result = await self.donors.update_one(
                    {"_id": donor_id, "version": current["version"]}, with_outbox({"$set": update.fields}, entries)
                )
            if result.matched_count == 1:
                return True
