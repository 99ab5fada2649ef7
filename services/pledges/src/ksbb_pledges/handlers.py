"""Events in: how the pledges service reacts to the registry's events (one handler per event type)."""

from __future__ import annotations

from typing import TypeAlias

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
from ksbb_kit.consumer import EventRouter

from ksbb_pledges.app.registry import RegistryFacts

NeedSnapshot: TypeAlias = NeedOpened | NeedChanged | NeedFulfilled
RecipientSnapshot: TypeAlias = (
    RecipientRegistered
    | RecipientVerified
    | RecipientActivated
    | RecipientUpdated
    | RecipientSuspended
    | RecipientReinstated
    | RecipientArchived
)
OrganisationSnapshot: TypeAlias = (
    OrganisationRegistered | OrganisationUpdated | OrganisationSuspended | OrganisationReinstated
)


def build_router(registry: RegistryFacts) -> EventRouter:
    """The pledges service's event routes, each handing its event to the registry-facts use cases."""
    router = EventRouter("pledges")

    @router.on(NeedOpened, NeedChanged, NeedFulfilled)
    async def need_snapshot(event: NeedSnapshot, _: CloudEvent) -> None:
        await registry.need(event.need, restated=event.restated)

    @router.on(NeedClosed, NeedCancelled)
    async def need_ended(event: NeedClosed | NeedCancelled, _: CloudEvent) -> None:
        await registry.need(event.need, event.reason, restated=event.restated)

    @router.on(
        RecipientRegistered,
        RecipientVerified,
        RecipientActivated,
        RecipientUpdated,
        RecipientSuspended,
        RecipientReinstated,
        RecipientArchived,
    )
    async def recipient_snapshot(event: RecipientSnapshot, _: CloudEvent) -> None:
        await registry.recipient(event.recipient, restated=event.restated)

    @router.on(OrganisationRegistered, OrganisationUpdated, OrganisationSuspended, OrganisationReinstated)
    async def organisation_snapshot(event: OrganisationSnapshot, _: CloudEvent) -> None:
        await registry.organisation(event.organisation, restated=event.restated)

    @router.on(RecipientContactRecorded)
    async def recipient_contact(event: RecipientContactRecorded, _: CloudEvent) -> None:
        contact = event.model_dump(include={"contact_name", "phone", "email", "street_address"})
        await registry.recipient_contact(event.recipient_id, contact)

    @router.on(OrganisationContactRecorded)
    async def organisation_contact(event: OrganisationContactRecorded, _: CloudEvent) -> None:
        contact = event.model_dump(include={"contact_name", "email", "phone"})
        await registry.organisation_contact(event.organisation_id, contact)

    @router.on_tombstone(topics.REGISTRY_CONTACTS)
    async def contact_erased(key: str) -> None:
        await registry.contact_erased(key)

    return router
