"""Events in: one handler per event type, each calling the use cases (registered on the notifier's router).

Records also arrive in batches (`build_batch`): the same handlers run for each record, in order, but the
e-mails and webhook fan-outs they ask for are collected and made once per batch — a few writes for a whole
batch instead of several per event, which is what lets the notifier work off a backlog quickly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

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
from ksbb_kit.batches import BatchHandler, BatchItem
from ksbb_kit.consumer import EventRouter

from ksbb_notifier.app.deliveries import Deliveries, FanOutBatch
from ksbb_notifier.app.mail import MailBatch, Mailer
from ksbb_notifier.app.replicas import Replicas
from ksbb_notifier.domain.mailing import (
    MailPlan,
    pledge_cancelled_mail,
    pledge_confirmed_mail,
    pledge_created_mail,
    pledge_delivered_mail,
    pledge_expired_mail,
    pledge_expiring_mail,
)


class FanOut(Protocol):
    """What the handlers ask of webhook fan-out (the use case itself, or a batch's collector)."""

    async def fan_out(self, envelope: CloudEvent) -> int:
        """Fan an event out to the endpoints that take it."""
        ...


class EventMail(Protocol):
    """What the handlers ask of e-mail queueing (the use case itself, or a batch's collector)."""

    async def queue_for_event(self, plan: MailPlan, event_id: str) -> int:
        """Queue the e-mails an event causes."""
        ...


#: Events that change the recipient replica, which later fan-outs read.
RECIPIENT_EVENTS = "ksbb.recipient."


def build_batch(*, replicas: Replicas, deliveries: Deliveries, mailer: Mailer) -> BatchHandler:
    """The batch path: every record through its handler, then the batch's e-mails and fan-outs at once."""

    async def apply(items: Sequence[BatchItem]) -> None:
        fan_outs, mails = FanOutBatch(deliveries), MailBatch(mailer)
        router = build_router(replicas=replicas, deliveries=fan_outs, mailer=mails)

        async def flush() -> None:
            # E-mails and fan-outs write different collections and both are idempotent: at once, so the
            # webhooks do not wait for the e-mail writes; the batch is done (and committed) after both.
            mailed, fanned = await asyncio.gather(mails.flush(), fan_outs.flush(), return_exceptions=True)
            for outcome in (mailed, fanned):
                if isinstance(outcome, BaseException):
                    raise outcome

        for event, envelope in items:
            if envelope.type.startswith(RECIPIENT_EVENTS):
                # A fan-out reads the recipient's kind from the replica: the events before this one
                # fan out with the replica as it was when they came, as one record at a time.
                await flush()
            await router.handlers[envelope.type](event, envelope)
        await flush()

    return apply


def build_router(*, replicas: Replicas, deliveries: FanOut, mailer: EventMail) -> EventRouter:
    """The notifier's event routes, bound to the use cases that exist by the time it subscribes."""
    router = EventRouter("notifier")

    # -- registry: replicas, then webhooks ---------------------------------------------------------

    @router.on(OrganisationRegistered, OrganisationUpdated, OrganisationSuspended, OrganisationReinstated)
    async def on_organisation(event: Any, envelope: CloudEvent) -> None:
        await replicas.organisation(event.organisation, restated=event.restated)
        if not event.restated:  # the registry restating unchanged state (anti-entropy) is no news to a subscriber
            await deliveries.fan_out(envelope)

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
        await replicas.recipient(event.recipient, restated=event.restated)
        if not event.restated:  # the registry restating unchanged state (anti-entropy) is no news to a subscriber
            await deliveries.fan_out(envelope)

    @router.on(NeedOpened, NeedChanged, NeedClosed, NeedCancelled, NeedFulfilled)
    async def on_need(event: Any, envelope: CloudEvent) -> None:
        if not event.restated:
            await deliveries.fan_out(envelope)

    # -- pledges: e-mails first (both steps are idempotent; a crash between them redelivers) ---------

    @router.on(PledgeCreated)
    async def on_pledge_created(event: PledgeCreated, envelope: CloudEvent) -> None:
        await mailer.queue_for_event(pledge_created_mail(event), envelope.id)
        await deliveries.fan_out(envelope)

    @router.on(PledgeConfirmed)
    async def on_pledge_confirmed(event: PledgeConfirmed, envelope: CloudEvent) -> None:
        await mailer.queue_for_event(pledge_confirmed_mail(event), envelope.id)
        await deliveries.fan_out(envelope)

    @router.on(PledgeExpiring)
    async def on_pledge_expiring(event: PledgeExpiring, envelope: CloudEvent) -> None:
        await mailer.queue_for_event(pledge_expiring_mail(event), envelope.id)
        await deliveries.fan_out(envelope)

    @router.on(PledgeExpired)
    async def on_pledge_expired(event: PledgeExpired, envelope: CloudEvent) -> None:
        await mailer.queue_for_event(pledge_expired_mail(event), envelope.id)
        await deliveries.fan_out(envelope)

    @router.on(PledgeDelivered)
    async def on_pledge_delivered(event: PledgeDelivered, envelope: CloudEvent) -> None:
        await mailer.queue_for_event(pledge_delivered_mail(event), envelope.id)
        await deliveries.fan_out(envelope)

    @router.on(PledgeCancelled)
    async def on_pledge_cancelled(event: PledgeCancelled, envelope: CloudEvent) -> None:
        await mailer.queue_for_event(pledge_cancelled_mail(event), envelope.id)
        await deliveries.fan_out(envelope)

    @router.on(PledgeDispatched, PledgeRejected)
    async def on_pledge_without_mail(event: Any, envelope: CloudEvent) -> None:
        await deliveries.fan_out(envelope)

    # -- confidential contacts (compacted topics: the latest record wins, tombstones erase) ----------

    @router.on(RecipientContactRecorded)
    async def on_recipient_contact(event: RecipientContactRecorded, envelope: CloudEvent) -> None:
        await replicas.contact(
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
        await replicas.contact(
            event.organisation_id,
            "organisation",
            {"contact_name": event.contact_name, "email": event.email, "phone": event.phone},
        )

    @router.on(DonorContactRecorded)
    async def on_donor_contact(event: DonorContactRecorded, envelope: CloudEvent) -> None:
        await replicas.contact(
            event.donor_id, "donor", {"name": event.name, "email": event.email, "phone": event.phone}
        )

    @router.on_tombstone(topics.REGISTRY_CONTACTS)
    async def on_registry_contact_erased(key: str) -> None:
        await replicas.erase_contact(key)

    @router.on_tombstone(topics.DONOR_CONTACTS)
    async def on_donor_contact_erased(key: str) -> None:
        await replicas.erase_contact(key)

    return router
