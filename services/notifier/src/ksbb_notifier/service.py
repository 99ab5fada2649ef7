"""Reactions to domain events: keep replicas, fan webhook messages out to endpoints, queue e-mails."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ksbb_contracts import CloudEvent
from ksbb_contracts.events.pledges import (
    PledgeCancelled,
    PledgeConfirmed,
    PledgeCreated,
    PledgeDelivered,
    PledgeExpired,
    PledgeExpiring,
)
from ksbb_kit.clock import Clock
from ksbb_kit.ids import derived_id

from ksbb_notifier.adapters.store import EPOCH, NotifierStore
from ksbb_notifier.dispatcher import Dispatcher
from ksbb_notifier.domain.routing import EndpointFilter, endpoint_receives, is_webhook_type, scope_of
from ksbb_notifier.mailer import Mailer

#: The KSBB rule: the donor calls the recipient's contact within 2×24 hours of pledging.
CALL_WITHIN = timedelta(hours=48)


def endpoint_filter(endpoint: dict[str, Any]) -> EndpointFilter:
    """The routing view of a stored endpoint."""
    return EndpointFilter(
        organisation_id=endpoint.get("organisation_id"),
        event_types=tuple(endpoint.get("event_types") or ()),
        kota_codes=tuple(endpoint.get("kota_codes") or ()),
        recipient_kinds=tuple(endpoint.get("recipient_kinds") or ()),
    )


def new_delivery(message_id: str, endpoint: dict[str, Any], event_type: str, now: datetime) -> dict[str, Any]:
    """A pending delivery of one message to one endpoint, due now; its id is derived from both."""
    return {
        "_id": derived_id("dlv", message_id, endpoint["_id"]),
        "message_id": message_id,
        "endpoint_id": endpoint["_id"],
        "organisation_id": endpoint.get("organisation_id"),
        "event_type": event_type,
        "status": "pending",
        "attempts": 0,
        "round_attempts": 0,
        "next_attempt_at": now,
        "leased_until": EPOCH,
        "lease_token": None,
        "created_at": now,
        "updated_at": now,
        "attempt_log": [],
    }


class NotifierService:
    """The notifier's event-driven use cases."""

    def __init__(self, store: NotifierStore, dispatcher: Dispatcher, mailer: Mailer, clock: Clock) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.mailer = mailer
        self.clock = clock

    # -- webhooks --------------------------------------------------------------------------------

    async def fan_out(self, envelope: CloudEvent) -> int:
        """Store the message and one delivery per matching enabled endpoint (idempotent on redelivery)."""
        if not is_webhook_type(envelope.type):
            return 0
        data = envelope.data
        snapshot: dict[str, Any] = next((data[k] for k in ("pledge", "need") if isinstance(data.get(k), dict)), {})
        kind = await self.store.recipient_kind(snapshot.get("recipient_id"))
        scope = scope_of(envelope.type, data, kind)
        now = self.clock.now()
        await self.store.insert_ignoring_duplicates(
            self.store.messages,
            [
                {
                    "_id": envelope.id,
                    "type": envelope.type,
                    "timestamp": envelope.time,
                    "data": data,
                    "organisation_id": scope.organisation_id,
                    "created_at": now,
                }
            ],
        )
        query: dict[str, Any] = {"enabled": True}
        if not scope.programme_wide:
            query["organisation_id"] = {"$in": [None, scope.organisation_id]}
        deliveries = [
            new_delivery(envelope.id, endpoint, envelope.type, now)
            async for endpoint in self.store.endpoints.find(query)
            if endpoint_receives(endpoint_filter(endpoint), envelope.type, scope)
        ]
        inserted = await self.store.insert_ignoring_duplicates(self.store.deliveries, deliveries)
        if deliveries:
            self.dispatcher.wake()
        return inserted

    # -- replicas --------------------------------------------------------------------------------

    async def replicate_organisation(self, organisation: dict[str, Any]) -> None:
        """Keep the public organisation snapshot (newest version wins)."""
        await self.store.upsert_versioned(
            self.store.organisations,
            organisation["organisation_id"],
            {"name": organisation["name"], "status": organisation["status"]},
            organisation["version"],
        )

    async def replicate_recipient(self, recipient: dict[str, Any]) -> None:
        """Keep the recipient facts the filters and e-mails need (newest version wins)."""
        await self.store.upsert_versioned(
            self.store.recipients,
            recipient["recipient_id"],
            {
                "name": recipient["name"],
                "kind": recipient["kind"],
                "organisation_id": recipient["organisation_id"],
                "kelurahan_code": recipient["kelurahan_code"],
                "status": recipient["status"],
            },
            recipient["version"],
        )

    async def record_contact(self, owner_id: str, kind: str, fields: dict[str, Any]) -> None:
        """Store a confidential contact (compacted topics: the latest record per key wins)."""
        await self.store.contacts.update_one({"_id": owner_id}, {"$set": {**fields, "kind": kind}}, upsert=True)

    async def erase_contact(self, owner_id: str) -> None:
        """A tombstone: forget the contact entirely."""
        await self.store.contacts.delete_one({"_id": owner_id})

    # -- e-mail ----------------------------------------------------------------------------------

    async def pledge_emails(self, event: Any, envelope: CloudEvent) -> int:
        """Queue the e-mails one pledge event causes; ids derive from the event so redelivery adds none."""
        pledge = event.pledge
        context: dict[str, Any] = {
            "pledge_id": pledge.pledge_id,
            "recipient_id": pledge.recipient_id,
            "item": pledge.item.value,
            "quantity": pledge.quantity,
            "planned_date": pledge.planned_date.isoformat(),
        }
        plan: list[tuple[str, str, str]] = []
        if isinstance(event, PledgeCreated):
            context["call_by"] = _format_time(event.occurred_at + CALL_WITHIN)
            plan = [
                ("donor_pledge_created", "donor", pledge.donor_id),
                ("pledge_new", "recipient", pledge.recipient_id),
                ("pledge_new", "organisation", pledge.organisation_id),
            ]
        elif isinstance(event, PledgeConfirmed):
            plan = [("donor_pledge_confirmed", "donor", pledge.donor_id)]
        elif isinstance(event, PledgeExpiring):
            context["expires_at"] = _format_time(event.expires_at)
            plan = [("donor_pledge_expiring", "donor", pledge.donor_id)]
        elif isinstance(event, PledgeExpired):
            context["reason"] = event.reason
            plan = [("donor_pledge_expired", "donor", pledge.donor_id)]
        elif isinstance(event, PledgeDelivered):
            context["received_quantity"] = event.received_quantity
            plan = [("donor_pledge_delivered", "donor", pledge.donor_id)]
        elif isinstance(event, PledgeCancelled):
            context["reason"] = event.reason
            plan = [
                ("pledge_cancelled", "recipient", pledge.recipient_id),
                ("pledge_cancelled", "organisation", pledge.organisation_id),
            ]
        queued = 0
        for kind, to_kind, to_id in plan:
            email_id = derived_id("eml", envelope.id, kind, to_kind, to_id)
            queued += await self.mailer.enqueue(email_id, kind, to_kind, to_id, context)
        return queued

    async def endpoint_disabled_email(self, endpoint: dict[str, Any], reason: str) -> None:
        """Tell the endpoint's organisation that its endpoint was disabled."""
        organisation_id = endpoint.get("organisation_id")
        if organisation_id is None:
            return
        email_id = derived_id("eml", endpoint["_id"], "endpoint_disabled", str(endpoint.get("version", 0)))
        await self.mailer.enqueue(
            email_id,
            "endpoint_disabled",
            "organisation",
            organisation_id,
            {
                "endpoint_id": endpoint["_id"],
                "url": endpoint["url"],
                "reason": reason,
            },
        )


def _format_time(moment: datetime) -> str:
    """A time as WIB (UTC+7), the time zone donors and recipients live in."""
    return (moment + timedelta(hours=7)).strftime("%d-%m-%Y %H:%M WIB")
