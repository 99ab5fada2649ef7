"""Donor profiles in MongoDB: public part on the donors topic, coordination contact on the confidential."""

from __future__ import annotations

from typing import Any

from ksbb_contracts import Event
from ksbb_contracts.events.pledges import DonorContactRecorded, DonorProfileUpdated
from ksbb_kit.errors import ApiError
from ksbb_kit.ids import derived_id
from ksbb_kit.outbox import new_document, strip_outbox, with_outbox
from ksbb_kit.runtime import ServiceRuntime
from pymongo.errors import DuplicateKeyError


def donor_id_for(subject: str) -> str:
    """The donor's stable public id, derived from the token subject (which may be personal data)."""
    return derived_id("dnr", subject)


class DonorStore:
    """Creates and updates donor profiles with their events in the same write."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.donors = runtime.db["donors"]

    async def get(self, donor_id: str) -> dict[str, Any] | None:
        """A donor profile without outbox bookkeeping."""
        return strip_outbox(await self.donors.find_one({"_id": donor_id}, projection={"_applied": 0}))

    async def put(self, donor_id: str, profile: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a donor's profile; publishes the public part and the confidential contact."""
        while True:
            current = await self.get(donor_id)
            version = (current or {}).get("version", 0) + 1
            now = self.runtime.clock.now()
            document = {**profile, "version": version, "updated_at": now}
            events: list[Event] = [
                DonorProfileUpdated(
                    donor_id=donor_id,
                    kind=profile["kind"],
                    show_name=profile["show_name"],
                    version=version,
                    display_name=profile["display_name"] if profile["show_name"] else None,
                )
            ]
            contact = profile.get("contact")
            if contact:
                events.append(DonorContactRecorded(donor_id=donor_id, **contact))
            entries = self.runtime.events(*events)
            if current is None:
                try:
                    await self.donors.insert_one(
                        new_document({"_id": donor_id, **document, "created_at": now}, entries)
                    )
                except DuplicateKeyError:
                    continue
            else:
                result = await self.donors.update_one(
                    {"_id": donor_id, "version": current["version"]}, with_outbox({"$set": document}, entries)
                )
                if result.matched_count == 0:
                    continue  # a concurrent update won; apply ours on top of it
            self.runtime.relay.wake()
            stored = await self.get(donor_id)
            if stored is None:
                raise ApiError(500, "donor_lost", "the donor profile vanished after writing")
            return stored
