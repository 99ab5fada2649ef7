"""Event handlers of the pledges service: how it reacts to the registry's events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ksbb_contracts import CloudEvent, topics
from ksbb_contracts.events.registry import (
    NeedCancelled,
    NeedChanged,
    NeedClosed,
    NeedFulfilled,
    NeedOpened,
    OrganisationContactRecorded,
    OrganisationRegistered,
    OrganisationReinstated,
    OrganisationSuspended,
    OrganisationUpdated,
    RecipientActivated,
    RecipientArchived,
    RecipientContactRecorded,
    RecipientRegistered,
    RecipientReinstated,
    RecipientSuspended,
    RecipientUpdated,
    RecipientVerified,
)
from ksbb_contracts.vocab import RecipientStatus
from ksbb_kit.consumer import EventRouter
from pymongo.errors import DuplicateKeyError

from ksbb_pledges.adapters.ledgers import LedgerStore

BLOCKING = {RecipientStatus.SUSPENDED: "recipient_suspended", RecipientStatus.ARCHIVED: "recipient_archived"}


def build_router(ledgers: Callable[[], LedgerStore]) -> EventRouter:
    """The pledges service's event routes; `ledgers` returns the store the composition root built."""
    router = EventRouter("pledges")

    @router.on(NeedOpened, NeedChanged, NeedFulfilled)
    async def need_snapshot(event: Any, _: CloudEvent) -> None:
        await ledgers().apply_need(event.need, None)

    @router.on(NeedClosed, NeedCancelled)
    async def need_ended(event: NeedClosed | NeedCancelled, _: CloudEvent) -> None:
        await ledgers().apply_need(event.need, event.reason)

    @router.on(
        RecipientRegistered,
        RecipientVerified,
        RecipientActivated,
        RecipientUpdated,
        RecipientSuspended,
        RecipientReinstated,
        RecipientArchived,
    )
    async def recipient_snapshot(event: Any, _: CloudEvent) -> None:
        recipient = event.recipient
        blocked = recipient.status in BLOCKING
        # Ledgers first, replica last: a crash in between redelivers the event, and the replica's
        # version check would otherwise drop it before the ledgers saw it.
        reason = BLOCKING.get(recipient.status, "recipient_unblocked")
        await ledgers().block_recipient(recipient.recipient_id, recipient.version, blocked, reason)
        await _upsert_versioned(
            ledgers().recipients,
            recipient.recipient_id,
            recipient.version,
            {
                "status": recipient.status.value,
                "organisation_id": recipient.organisation_id,
                "kelurahan_code": recipient.kelurahan_code,
                "households": recipient.beneficiaries.households,
                "name": recipient.name,
            },
        )
        # A need opened concurrently may have created its ledger from the old replica after the first
        # pass; a second (version-checked, so otherwise idempotent) pass catches it.
        await ledgers().block_recipient(recipient.recipient_id, recipient.version, blocked, reason)

    @router.on(OrganisationRegistered, OrganisationUpdated, OrganisationSuspended, OrganisationReinstated)
    async def organisation_snapshot(event: Any, _: CloudEvent) -> None:
        organisation = event.organisation
        await _upsert_versioned(
            ledgers().organisations,
            organisation.organisation_id,
            organisation.version,
            {"name": organisation.name, "status": organisation.status.value, "kind": organisation.kind.value},
        )

    @router.on(RecipientContactRecorded)
    async def recipient_contact(event: RecipientContactRecorded, _: CloudEvent) -> None:
        contact = event.model_dump(include={"contact_name", "phone", "email", "street_address"})
        await ledgers().recipients.update_one({"_id": event.recipient_id}, {"$set": {"contact": contact}}, upsert=True)

    @router.on(OrganisationContactRecorded)
    async def organisation_contact(event: OrganisationContactRecorded, _: CloudEvent) -> None:
        contact = event.model_dump(include={"contact_name", "email", "phone"})
        await ledgers().organisations.update_one(
            {"_id": event.organisation_id}, {"$set": {"contact": contact}}, upsert=True
        )

    @router.on_tombstone(topics.REGISTRY_CONTACTS)
    async def contact_erased(key: str) -> None:
        # Keys are prefixed ids, so the key names either a recipient or an organisation.
        await ledgers().recipients.update_one({"_id": key}, {"$unset": {"contact": ""}})
        await ledgers().organisations.update_one({"_id": key}, {"$unset": {"contact": ""}})

    return router


async def _upsert_versioned(collection: Any, key: str, version: int, fields: dict[str, Any]) -> None:
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
