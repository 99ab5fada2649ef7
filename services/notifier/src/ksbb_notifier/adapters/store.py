"""MongoDB repositories of the notifier: endpoints, messages, deliveries, e-mails and replicas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from ksbb_kit.outbox import with_outbox
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

#: "Not leased": a lease time every claim filter treats as expired (no nulls in range filters).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DUPLICATE_KEY = 11000


class NotifierStore:
    """All collections of the notifier's own database."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.endpoints = db["endpoints"]
        self.messages = db["messages"]
        self.deliveries = db["deliveries"]
        self.emails = db["emails"]
        self.organisations = db["organisations"]
        self.recipients = db["recipients"]
        self.contacts = db["contacts"]

    async def create_indexes(self) -> None:
        """Indexes for the claim queries and the delivery log."""
        await self.endpoints.create_index([("organisation_id", ASCENDING), ("created_at", ASCENDING)])
        await self.deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.deliveries.create_index([("endpoint_id", ASCENDING), ("created_at", DESCENDING)])
        await self.emails.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])

    # -- generic helpers -------------------------------------------------------------------------

    @staticmethod
    async def insert_ignoring_duplicates(collection: Any, documents: list[dict[str, Any]]) -> int:
        """Insert documents with deterministic ids; ones that already exist are left alone (idempotent)."""
        if not documents:
            return 0
        try:
            result = await collection.insert_many(documents, ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return int(exc.details.get("nInserted", 0))

    # -- leases ----------------------------------------------------------------------------------

    @staticmethod
    async def claim(
        collection: Any, now: datetime, lease_until: datetime, extra: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Atomically lease one due pending document (several notifier instances never share one)."""
        filter_: dict[str, Any] = {
            "status": "pending",
            "next_attempt_at": {"$lte": now},
            "leased_until": {"$lt": now},
        }
        filter_.update(extra or {})
        return await collection.find_one_and_update(
            filter_,
            {"$set": {"leased_until": lease_until, "lease_token": uuid.uuid4().hex}},
            sort=[("next_attempt_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    @staticmethod
    async def due(
        collection: Any, now: datetime, limit: int, exclude_endpoints: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Ids (and endpoints) of pending documents due now and not leased, oldest first."""
        filter_: dict[str, Any] = {
            "status": "pending",
            "next_attempt_at": {"$lte": now},
            "leased_until": {"$lt": now},
        }
        if exclude_endpoints:
            filter_["endpoint_id"] = {"$nin": exclude_endpoints}
        cursor = collection.find(filter_, {"_id": 1, "endpoint_id": 1}).sort("next_attempt_at", ASCENDING)
        return await cursor.limit(limit).to_list(limit)

    @staticmethod
    async def claim_many(
        collection: Any, document_ids: list[str], now: datetime, lease_until: datetime
    ) -> list[dict[str, Any]]:
        """Lease those of the documents still due and unleased, in one write; returns the ones this call won.

        Every document is leased atomically on its own, so two instances never win the same one; one
        shared token per batch keeps it to two round-trips however many documents are claimed.
        """
        token = uuid.uuid4().hex
        await collection.update_many(
            {
                "_id": {"$in": document_ids},
                "status": "pending",
                "next_attempt_at": {"$lte": now},
                "leased_until": {"$lt": now},
            },
            {"$set": {"leased_until": lease_until, "lease_token": token}},
        )
        return await collection.find({"_id": {"$in": document_ids}, "lease_token": token}).to_list(None)

    @staticmethod
    async def release(collection: Any, document_id: str, lease_token: str) -> None:
        """Give a lease back without changing anything else (shutdown, throttling)."""
        await collection.update_one(
            {"_id": document_id, "lease_token": lease_token},
            {"$set": {"leased_until": EPOCH, "lease_token": None}},
        )

    # -- endpoints -------------------------------------------------------------------------------

    async def disable_endpoint(
        self, endpoint_id: str, reason: str, now: datetime, entries: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Disable an enabled endpoint with its event in the same write; None if it was not enabled."""
        update = with_outbox(
            {
                "$set": {"enabled": False, "disabled_reason": reason, "disabled_at": now, "updated_at": now},
                "$inc": {"version": 1},
            },
            entries,
        )
        return await self.endpoints.find_one_and_update(
            {"_id": endpoint_id, "enabled": True},
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def note_endpoint_failure(self, endpoint_id: str, now: datetime) -> dict[str, Any] | None:
        """Start the endpoint's failure streak if none is running; returns the endpoint."""
        await self.endpoints.update_one({"_id": endpoint_id, "failing_since": None}, {"$set": {"failing_since": now}})
        return await self.endpoints.find_one({"_id": endpoint_id})

    async def note_endpoint_success(self, endpoint_id: str) -> None:
        """End the endpoint's failure streak."""
        await self.endpoints.update_one(
            {"_id": endpoint_id, "failing_since": {"$ne": None}}, {"$set": {"failing_since": None}}
        )

    # -- replicas --------------------------------------------------------------------------------

    async def upsert_versioned(self, collection: Any, doc_id: str, fields: dict[str, Any], version: int) -> bool:
        """Store a snapshot unless a newer (or the same) version is already there."""
        try:
            result = await collection.update_one(
                {"_id": doc_id, "version": {"$lt": version}},
                {"$set": {**fields, "version": version}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # a newer snapshot exists
        return result.modified_count > 0 or result.upserted_id is not None

    async def recipient_kind(self, recipient_id: str | None) -> str | None:
        """The kind of a recipient from the replica (None if unknown)."""
        if recipient_id is None:
            return None
        doc = await self.recipients.find_one({"_id": recipient_id}, {"kind": 1})
        return doc.get("kind") if doc else None

    # -- retention -------------------------------------------------------------------------------

    async def sweep_finished(self, cutoff: datetime) -> dict[str, int]:
        """Delete finished deliveries, unreferenced messages and finished e-mails created before `cutoff`."""
        deliveries = await self.deliveries.delete_many(
            {
                "status": {"$in": ["succeeded", "failed"]},
                "created_at": {"$lt": cutoff},
                "_outbox_pending": {"$ne": True},
            }
        )
        still_needed = await self.deliveries.distinct("message_id", {"created_at": {"$lt": cutoff}})
        messages = await self.messages.delete_many({"created_at": {"$lt": cutoff}, "_id": {"$nin": still_needed}})
        emails = await self.emails.delete_many(
            {"status": {"$in": ["sent", "skipped", "failed"]}, "created_at": {"$lt": cutoff}}
        )
        return {
            "deliveries": deliveries.deleted_count,
            "messages": messages.deleted_count,
            "emails": emails.deleted_count,
        }
