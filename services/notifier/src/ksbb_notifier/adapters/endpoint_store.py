"""MongoDB store of webhook endpoints (collection `endpoints`, which carries `endpoint_disabled` events)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ksbb_contracts import Event
from ksbb_kit.outbox import with_outbox
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_notifier.adapters.mongo import Document, Outbox
from ksbb_notifier.domain.endpoints import Endpoint, SigningSecret


def _secret_document(secret: SigningSecret) -> Document:
    return {
        "sealed": secret.sealed,
        "hint": secret.hint,
        "valid_until": secret.valid_until,
        "created_at": secret.created_at,
    }


def endpoint_document(endpoint: Endpoint) -> Document:
    """The stored form of an endpoint."""
    return {
        "_id": endpoint.id,
        "organisation_id": endpoint.organisation_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "kota_codes": list(endpoint.kota_codes),
        "recipient_kinds": list(endpoint.recipient_kinds),
        "rate_limit_per_second": endpoint.rate_limit_per_second,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "secrets": [_secret_document(s) for s in endpoint.secrets],
        "failing_since": endpoint.failing_since,
        "version": endpoint.version,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "created_by": endpoint.created_by,
    }


def endpoint_from(doc: Document) -> Endpoint:
    """An endpoint from its stored form."""
    return Endpoint(
        id=doc["_id"],
        organisation_id=doc.get("organisation_id"),
        url=doc["url"],
        description=doc.get("description"),
        event_types=tuple(doc.get("event_types") or ()),
        kota_codes=tuple(doc.get("kota_codes") or ()),
        recipient_kinds=tuple(doc.get("recipient_kinds") or ()),
        rate_limit_per_second=doc.get("rate_limit_per_second"),
        enabled=bool(doc.get("enabled", False)),
        disabled_reason=doc.get("disabled_reason"),
        secrets=tuple(
            SigningSecret(s["sealed"], s["hint"], s.get("valid_until"), s["created_at"]) for s in doc.get("secrets", [])
        ),
        failing_since=doc.get("failing_since"),
        version=doc["version"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        created_by=doc.get("created_by"),
    )


def _maybe(doc: Document | None) -> Endpoint | None:
    return endpoint_from(doc) if doc is not None else None


class MongoEndpointStore:
    """Endpoints in MongoDB; versioned changes use findAndModify, events ride in the same write."""

    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._endpoints = db["endpoints"]
        self._outbox = outbox

    async def create_indexes(self) -> None:
        """The index of the owner listing."""
        await self._endpoints.create_index([("organisation_id", ASCENDING), ("created_at", ASCENDING)])

    async def add(self, endpoint: Endpoint) -> None:
        """Store a new endpoint."""
        await self._endpoints.insert_one(endpoint_document(endpoint))

    async def get(self, endpoint_id: str) -> Endpoint | None:
        """One endpoint, or None."""
        return _maybe(await self._endpoints.find_one({"_id": endpoint_id}))

    async def get_many(self, endpoint_ids: Sequence[str]) -> list[Endpoint]:
        """The endpoints among these ids that exist (one read)."""
        return [endpoint_from(d) async for d in self._endpoints.find({"_id": {"$in": list(set(endpoint_ids))}})]

    async def owned_by(self, *, organisation_id: str | None, any_owner: bool) -> list[Endpoint]:
        """Endpoints of one owner (`None` = admins' own), or of every owner; oldest first."""
        query: Document = {} if any_owner else {"organisation_id": organisation_id}
        docs = await self._endpoints.find(query).sort("created_at", 1).to_list(1000)
        return [endpoint_from(d) for d in docs]

    async def enabled_for(self, organisation_id: str | None, *, programme_wide: bool) -> list[Endpoint]:
        """Enabled endpoints that may receive an event of this organisation (before filters)."""
        query: Document = {"enabled": True}
        if not programme_wide:
            query["organisation_id"] = {"$in": [None, organisation_id]}
        return [endpoint_from(d) async for d in self._endpoints.find(query)]

    async def update(self, endpoint_id: str, version: int, changes: dict[str, Any]) -> Endpoint | None:
        """Apply changes if the endpoint still has `version`; the updated endpoint, or None if it moved on."""
        return _maybe(
            await self._endpoints.find_one_and_update(
                {"_id": endpoint_id, "version": version},
                {"$set": changes, "$inc": {"version": 1}},
                return_document=ReturnDocument.AFTER,
            )
        )

    async def replace_secrets(
        self, endpoint_id: str, version: int, secrets: tuple[SigningSecret, ...], now: datetime
    ) -> bool:
        """Store rotated secrets if the endpoint still has `version`."""
        updated = await self._endpoints.find_one_and_update(
            {"_id": endpoint_id, "version": version},
            {"$set": {"secrets": [_secret_document(s) for s in secrets], "updated_at": now}, "$inc": {"version": 1}},
        )
        return updated is not None

    async def delete(self, endpoint_id: str) -> None:
        """Remove an endpoint."""
        await self._endpoints.delete_one({"_id": endpoint_id})

    async def disable(self, endpoint_id: str, reason: str, now: datetime, events: Sequence[Event]) -> Endpoint | None:
        """Disable an enabled endpoint with its events in the same write; None if it was not enabled."""
        entries = self._outbox.entries_for(events)
        update = with_outbox(
            {
                "$set": {"enabled": False, "disabled_reason": reason, "disabled_at": now, "updated_at": now},
                "$inc": {"version": 1},
            },
            entries,
        )
        async with self._outbox.pending("endpoints", endpoint_id, entries):
            updated = await self._endpoints.find_one_and_update(
                {"_id": endpoint_id, "enabled": True}, update, return_document=ReturnDocument.AFTER
            )
        if updated is None:
            return None
        return endpoint_from(updated)

    async def start_failure_streak(self, endpoint_id: str, now: datetime) -> Endpoint | None:
        """Start the failure streak unless one is running; the endpoint as it is now."""
        await self._endpoints.update_one({"_id": endpoint_id, "failing_since": None}, {"$set": {"failing_since": now}})
        return await self.get(endpoint_id)

    async def end_failure_streak(self, endpoint_id: str) -> None:
        """End the failure streak."""
        await self._endpoints.update_one(
            {"_id": endpoint_id, "failing_since": {"$ne": None}}, {"$set": {"failing_since": None}}
        )
