"""Replicas of the registry's recipients and organisations in MongoDB, upserted by version."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


class MongoReplicas:
    """Recipients (status, organisation, households, contact) and organisations (facts, contact)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.recipients = db["recipients"]
        self.organisations = db["organisations"]

    async def recipient_status(self, recipient_id: str) -> tuple[str | None, int]:
        """The recipient's status and replica version; (None, 0) when unknown."""
        replica = await self.recipients.find_one({"_id": recipient_id}, projection={"status": 1, "version": 1})
        if replica is None:
            return None, 0
        return replica.get("status"), int(replica.get("version") or 0)

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

    async def upsert_recipient(self, recipient_id: str, version: int, fields: dict[str, Any]) -> None:
        """Store a recipient's facts unless this or a newer version is stored."""
        await _upsert_versioned(self.recipients, recipient_id, version, fields)

    async def upsert_organisation(self, organisation_id: str, version: int, fields: dict[str, Any]) -> None:
        """Store an organisation's facts unless this or a newer version is stored."""
        await _upsert_versioned(self.organisations, organisation_id, version, fields)

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


async def _upsert_versioned(
    collection: AsyncCollection[dict[str, Any]], key: str, version: int, fields: dict[str, Any]
) -> None:
    """Set a replica's fields unless it holds this or a newer version (redeliveries change nothing)."""
    older = {"$or": [{"version": {"$lt": version}}, {"version": {"$exists": False}}]}
    while True:
        result = await collection.update_one({"_id": key, **older}, {"$set": {**fields, "version": version}})
        if result.matched_count or await collection.count_documents({"_id": key}):
            return
        try:
            await collection.insert_one({"_id": key, **fields, "version": version})
            return
        except DuplicateKeyError:
            continue  # a contact event created the replica meanwhile: set the fields on it
