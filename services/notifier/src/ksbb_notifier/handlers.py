"""Event handlers of the notifier service: how it reacts to other services' events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ksbb_contracts import CloudEvent, topics
from ksbb_contracts.events.pledges import (
    DonorContactRecorded,
    PledgeCancelled,
    PledgeConfirmed,
    PledgeCreated,
    PledgeDelivered,
    PledgeDispatched,
    PledgeExpired,
    PledgeExpiring,
    PledgeRejected,
)
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

from ksbb_notifier.service import NotifierService

ServiceProvider = Callable[[], NotifierService]


def build_router(service: ServiceProvider) -> EventRouter:
    """The notifier service's event routes; `service` returns the wired use cases once Mongo is up."""
    router = EventRouter("notifier")

    @router.on(OrganisationRegistered, OrganisationUpdated, OrganisationSuspended, OrganisationReinstated)
    async def on_organisation(event: Any, envelope: CloudEvent) -> None:
        await service().replicate_organisation(event.organisation.model_dump(mode="json"))
        await service().fan_out(envelope)

    @router.on(
        RecipientRegistered,
        RecipientVerified,
        RecipientActivated,
        RecipientUpdated,
        RecipientSuspended,
        RecipientReinstated,
        RecipientArchived,
    )
    async def on_recipient(event: Any, envelope: CloudEvent) -> None:
        await service().replicate_recipient(event.recipient.model_dump(mode="json"))
        await service().fan_out(envelope)

    @router.on(NeedOpened, NeedChanged, NeedClosed, NeedCancelled, NeedFulfilled)
    async def on_need(event: Any, envelope: CloudEvent) -> None:
        await service().fan_out(envelope)

    @router.on(
        PledgeCreated,
        PledgeConfirmed,
        PledgeDispatched,
        PledgeDelivered,
        PledgeCancelled,
        PledgeRejected,
        PledgeExpired,
        PledgeExpiring,
    )
    async def on_pledge(event: Any, envelope: CloudEvent) -> None:
        # E-mails first: both steps are idempotent, and a crash between them redelivers the event.
        await service().pledge_emails(event, envelope)
        await service().fan_out(envelope)

    @router.on(RecipientContactRecorded)
    async def on_recipient_contact(event: RecipientContactRecorded, envelope: CloudEvent) -> None:
        await service().record_contact(
            event.recipient_id,
            "recipient",
            {
                "organisation_id": event.organisation_id,
                "contact_name": event.contact_name,
                "phone": event.phone,
                "email": event.email,
                "street_address": event.street_address,
            },
        )

    @router.on(OrganisationContactRecorded)
    async def on_organisation_contact(event: OrganisationContactRecorded, envelope: CloudEvent) -> None:
        await service().record_contact(
            event.organisation_id,
            "organisation",
            {
                "contact_name": event.contact_name,
                "email": event.email,
                "phone": event.phone,
            },
        )

    @router.on(DonorContactRecorded)
    async def on_donor_contact(event: DonorContactRecorded, envelope: CloudEvent) -> None:
        await service().record_contact(
            event.donor_id,
            "donor",
            {
                "name": event.name,
                "email": event.email,
                "phone": event.phone,
            },
        )

    @router.on_tombstone(topics.REGISTRY_CONTACTS)
    async def on_registry_contact_erased(key: str) -> None:
        await service().erase_contact(key)

    @router.on_tombstone(topics.DONOR_CONTACTS)
    async def on_donor_contact_erased(key: str) -> None:
        await service().erase_contact(key)

    return router
