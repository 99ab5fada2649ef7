"""Replicas of the registry's recipients and organisations in MongoDB, replaced only as they were read."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

#: What a decision about a replica reads: the snapshot version and its digest.
_HELD = {"version": 1, "state_digest": 1}


class MongoReplicas:
    """Recipients (status, organisation, households, contact) and organisations (facts, contact)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.recipients = db["recipients"]
        self.organisations = db["organisations"]

    async def recipient_held(self, recipient_id: str) -> dict[str, Any] | None:
        """The recipient replica's `status`, `version` and `state_digest` (None: never heard of)."""
        return await self.recipients.find_one({"_id": recipient_id}, projection=_HELD | {"status": 1})

    async def organisation_held(self, organisation_id: str) -> dict[str, Any] | None:
        """The organisation replica's `version` and `state_digest` (None: never heard of)."""
        return await self.organisations.find_one({"_id": organisation_id}, projection=_HELD)

    async def recipient_organisation(self, recipient_id: str) -> str | None:
        """The recipient's facilitating organisation, if known."""
        replica = await self.recipients.find_one({"_id": recipient_id}, projection={"organisation_id": 1})
        return (replica or {}).get("organisation_id")

    async def recipient_contact(self, recipient_id: str) -> dict[str, Any] | None:
        """The recipient's confidential contact person, if known."""
        replica = await self.recipients.find_one({"_id": recipient_id}, projection={"contact": 1})
        return (replica or {}).get("contact")

    async def households(self) -> dict[str, int]:
        """Beneficiary households per known recipient (1 when the registry gave none)."""
        return {
            replica["_id"]: int(replica.get("households") or 1)
            async for replica in self.recipients.find({}, projection={"households": 1})
        }

    async def replace_recipient(self, recipient_id: str, held: dict[str, Any] | None, fields: dict[str, Any]) -> bool:
        """Set a recipient's facts if its replica still holds what was read (`held`); False: it changed meanwhile."""
        return await _replace_as_read(self.recipients, recipient_id, held, fields)

    async def replace_organisation(
        self, organisation_id: str, held: dict[str, Any] | None, fields: dict[str, Any]
    ) -> bool:
        """Set an organisation's facts if its replica still holds what was read; False: it changed meanwhile."""
        return await _replace_as_read(self.organisations, organisation_id, held, fields)

    async def record_recipient_contact(self, recipient_id: str, contact: dict[str, Any]) -> None:
        """Set a recipient's contact person (creating the replica if the snapshot has not arrived yet)."""
        await self.recipients.update_one({"_id": recipient_id}, {"$set": {"contact": contact}}, upsert=True)

    async def record_organisation_contact(self, organisation_id: str, contact: dict[str, Any]) -> None:
        """Set an organisation's contact person (creating the replica if needed)."""
        await self.organisations.update_one({"_id": organisation_id}, {"$set": {"contact": contact}}, upsert=True)

    async def erase_contact(self, key: str) -> None:
        """Forget a contact person; keys are prefixed ids, so the key names a recipient or an organisation."""
        await self.recipients.update_one({"_id": key}, {"$unset": {"contact": ""}})
        await self.organisations.update_one({"_id": key}, {"$unset": {"contact": ""}})


async def _replace_as_read(
    collection: AsyncCollection[dict[str, Any]], key: str, held: dict[str, Any] | None, fields: dict[str, Any]
) -> bool:
    """Set a replica's fields if its version and digest are still those read (None: there was no replica)."""
    if held is None:
        try:
            await collection.insert_one({"_id": key, **fields})
            return True
        except DuplicateKeyError:
            return False  # a contact event or another snapshot created it meanwhile: read again
    # A missing field matches None: a replica a contact event created has neither version nor digest.
    guard = {"_id": key, "version": held.get("version"), "state_digest": held.get("state_digest")}
    result = await collection.update_one(guard, {"$set": fields})
    return result.matched_count == 1
