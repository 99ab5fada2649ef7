"""MongoDB store of replicas: public organisation and recipient snapshots, confidential contacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_notifier.adapters.mongo import Collection, Document
from ksbb_notifier.domain.mailing import Contact

CONTACT_FIELDS = ("name", "contact_name", "email", "phone", "street_address", "organisation_id")


async def upsert_versioned(collection: Collection, doc_id: str, fields: dict[str, Any], version: int) -> bool:
    """Store a snapshot unless a newer (or the same) version is already there."""
    # A findAndModify, not an update: the local stand-in scans the whole collection for an update whose
    # filter has more than `_id`, but finds a findAndModify's document by `_id`. Matched or inserted, the
    # version moved forward, so the snapshot was stored.
    try:
        await collection.find_one_and_update(
            {"_id": doc_id, "version": {"$lt": version}},
            {"$set": {**fields, "version": version}},
            projection={"_id": 1},
            upsert=True,
        )
    except DuplicateKeyError:
        return False  # a newer snapshot exists
    return True


class MongoReplicaStore:
    """Collections `organisations`, `recipients` (newest version wins) and `contacts` (latest record wins)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._organisations = db["organisations"]
        self._recipients = db["recipients"]
        self._contacts = db["contacts"]

    async def keep_organisation(self, organisation_id: str, fields: dict[str, Any], version: int) -> bool:
        """Store an organisation snapshot unless a newer (or the same) version is there already."""
        return await upsert_versioned(self._organisations, organisation_id, fields, version)

    async def keep_recipient(self, recipient_id: str, fields: dict[str, Any], version: int) -> bool:
        """Store a recipient snapshot unless a newer (or the same) version is there already."""
        return await upsert_versioned(self._recipients, recipient_id, fields, version)

    async def snapshot_held(self, kind: str, owner_id: str) -> dict[str, Any] | None:
        """The `version` and `state_digest` of an `organisation` or `recipient` replica (None: none held)."""
        return await self._snapshots(kind).find_one({"_id": owner_id}, {"version": 1, "state_digest": 1})

    async def replace_snapshot(
        self, kind: str, owner_id: str, held: dict[str, Any] | None, fields: dict[str, Any]
    ) -> bool:
        """Set a replica's fields if it still holds what was read (`held`); False: it changed meanwhile."""
        collection = self._snapshots(kind)
        if held is None:
            try:
                await collection.insert_one({"_id": owner_id, **fields})
                return True
            except DuplicateKeyError:
                return False
        # A missing digest matches None (a replica kept before digests were); findAndModify, see above.
        guard = {"_id": owner_id, "version": held.get("version"), "state_digest": held.get("state_digest")}
        return await collection.find_one_and_update(guard, {"$set": fields}, projection={"_id": 1}) is not None

    def _snapshots(self, kind: str) -> Collection:
        return {"organisation": self._organisations, "recipient": self._recipients}[kind]

    async def recipient_kinds(self, recipient_ids: Sequence[str]) -> dict[str, str]:
        """The kinds of the known recipients among these (one read)."""
        if not recipient_ids:
            return {}
        found = self._recipients.find({"_id": {"$in": list(set(recipient_ids))}}, {"kind": 1})
        return {doc["_id"]: doc["kind"] async for doc in found if doc.get("kind")}

    async def recipient_kind(self, recipient_id: str | None) -> str | None:
        """A recipient's kind, None if unknown."""
        if recipient_id is None:
            return None
        doc = await self._recipients.find_one({"_id": recipient_id}, {"kind": 1})
        return doc.get("kind") if doc else None

    async def recipient_name(self, recipient_id: str) -> str | None:
        """A recipient's name, None if unknown."""
        doc = await self._recipients.find_one({"_id": recipient_id}, {"name": 1})
        return doc["name"] if doc else None

    async def save_contact(self, owner_id: str, kind: str, fields: dict[str, Any]) -> None:
        """Store a confidential contact (the latest record per owner wins)."""
        await self._contacts.update_one({"_id": owner_id}, {"$set": {**fields, "kind": kind}}, upsert=True)

    async def erase_contact(self, owner_id: str) -> None:
        """Forget a contact entirely."""
        await self._contacts.delete_one({"_id": owner_id})

    async def recipient_names(self, recipient_ids: Sequence[str]) -> dict[str, str]:
        """The names of the known recipients among these (one read)."""
        if not recipient_ids:
            return {}
        found = self._recipients.find({"_id": {"$in": list(set(recipient_ids))}}, {"name": 1})
        return {doc["_id"]: doc["name"] async for doc in found if doc.get("name") is not None}

    async def contacts(self, owner_ids: Sequence[str]) -> dict[str, Contact]:
        """The known contacts among these owner ids (one read, by `_id` alone)."""
        if not owner_ids:
            return {}
        found = self._contacts.find({"_id": {"$in": list(set(owner_ids))}})
        return {doc["_id"]: _contact_from(doc) async for doc in found}

    async def contact(self, owner_id: str, *, kind: str | None = None) -> Contact | None:
        """A contact by owner id (and kind, when given)."""
        query: Document = {"_id": owner_id}
        if kind is not None:
            query["kind"] = kind
        doc = await self._contacts.find_one(query)
        if doc is None:
            return None
        return _contact_from(doc)


def _contact_from(doc: Document) -> Contact:
    """A contact from its stored form."""
    return Contact(owner_id=doc["_id"], kind=doc.get("kind", ""), **{k: doc.get(k) for k in CONTACT_FIELDS})
