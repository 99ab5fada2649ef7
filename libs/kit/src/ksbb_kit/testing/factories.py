"""Test factories: a valid event of every contract type, any field overridable, with its envelope and record.

    make_event(NeedOpened)                                   # a valid need, id ned_1, 10 paket sembako
    make_event(NeedOpened, need={"need_id": "ned_9", "quantity": 3})   # dicts merge into nested snapshots
    make_event("ksbb.pledge.delivered.v1", received_quantity=8)
    envelope(event)                                          # its CloudEvents envelope, as the owner sends it

Defaults are consistent across aggregates (the pledge's need is `ned_1`, whose recipient is `rcp_1`, of
organisation `org_1`, in kelurahan Gambir), and each lifecycle event carries the status it results in.
Unknown field names raise TypeError, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, overload

from ksbb_contracts import CONTENT_TYPE, EVENT_TYPES, CloudEvent, Event
from ksbb_contracts.events import (
    Beneficiaries,
    DonorContactRecorded,
    DonorProfileUpdated,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    NeedCancelled,
    NeedChanged,
    NeedClosed,
    NeedFulfilled,
    NeedLedgerChanged,
    NeedOpened,
    NeedPublic,
    OfferCreated,
    OrganisationContactRecorded,
    OrganisationPublic,
    OrganisationRegistered,
    OrganisationReinstated,
    OrganisationSuspended,
    OrganisationUpdated,
    PledgeCancelled,
    PledgeConfirmed,
    PledgeCreated,
    PledgeDelivered,
    PledgeDispatched,
    PledgeExpired,
    PledgeExpiring,
    PledgePublic,
    PledgeRejected,
    PledgeRestated,
    ProposedAllocation,
    RecipientActivated,
    RecipientArchived,
    RecipientContactRecorded,
    RecipientPublic,
    RecipientRegistered,
    RecipientReinstated,
    RecipientSuspended,
    RecipientUpdated,
    RecipientVerified,
    WebhookDeliveryFailed,
    WebhookEndpointDisabled,
)
from ksbb_contracts.vocab import (
    DeliveryMode,
    DonorKind,
    Item,
    NeedStatus,
    OrganisationKind,
    OrganisationStatus,
    PledgeStatus,
    Priority,
    RecipientKind,
    RecipientStatus,
)
from pydantic import BaseModel

from ksbb_kit.consumer import ConsumedRecord
from ksbb_kit.ids import new_id

EventT = TypeVar("EventT", bound=Event)
ModelT = TypeVar("ModelT", bound=BaseModel)

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
KOTA = "31.71"  # Jakarta Pusat
KELURAHAN = "31.71.01.1001"  # Gambir, Jakarta Pusat
ORGANISATION_ID = "org_1"
RECIPIENT_ID = "rcp_1"
NEED_ID = "ned_1"
PLEDGE_ID = "plg_1"
DONOR_ID = "dnr_1"
OFFER_ID = "off_1"
ENDPOINT_ID = "wep_1"


def build(model: type[ModelT], defaults: dict[str, Any], overrides: dict[str, Any]) -> ModelT:
    """A model from defaults and overrides; a dict given for a nested model merges into its default."""
    unknown = set(overrides) - set(model.model_fields)
    if unknown:
        raise TypeError(f"{model.__name__} has no field(s) {', '.join(sorted(unknown))}")
    values = dict(defaults)
    for name, value in overrides.items():
        current = values.get(name)
        if isinstance(value, dict) and isinstance(current, BaseModel):
            values[name] = build(type(current), dict(current), value)
        else:
            values[name] = value
    return model.model_validate(values)


# -- the public snapshots events carry --------------------------------------------------------------------


def organisation_public(**overrides: Any) -> OrganisationPublic:
    """An active facilitator organisation covering Jakarta Pusat."""
    return build(OrganisationPublic, {
        "organisation_id": ORGANISATION_ID, "name": "Lembaga Peduli Gambir", "kind": OrganisationKind.NGO,
        "area_codes": [KOTA], "status": OrganisationStatus.ACTIVE, "version": 1,
    }, overrides)


def recipient_public(**overrides: Any) -> RecipientPublic:
    """An active RW rentan in Gambir with 40 households (`beneficiaries={...}` merges)."""
    return build(RecipientPublic, {
        "recipient_id": RECIPIENT_ID, "name": "RW 03 Gambir", "kind": RecipientKind.RW_RENTAN,
        "organisation_id": ORGANISATION_ID, "kelurahan_code": KELURAHAN, "rw": 3,
        "beneficiaries": Beneficiaries(households=40, people=160), "status": RecipientStatus.ACTIVE, "version": 1,
    }, overrides)


def need_public(**overrides: Any) -> NeedPublic:
    """An open need of the default recipient for 10 paket sembako."""
    return build(NeedPublic, {
        "need_id": NEED_ID, "recipient_id": RECIPIENT_ID, "organisation_id": ORGANISATION_ID,
        "kelurahan_code": KELURAHAN, "rw": 3, "item": Item.SEMBAKO, "quantity": 10, "unit": "paket",
        "priority": Priority.HIGH, "needed_by": date(2026, 2, 1), "status": NeedStatus.OPEN, "version": 1,
    }, overrides)


def pledge_public(**overrides: Any) -> PledgePublic:
    """A pledge of the whole default need by the default donor, delivered by the donor."""
    return build(PledgePublic, {
        "pledge_id": PLEDGE_ID, "need_id": NEED_ID, "recipient_id": RECIPIENT_ID,
        "organisation_id": ORGANISATION_ID, "donor_id": DONOR_ID, "kelurahan_code": KELURAHAN,
        "item": Item.SEMBAKO, "quantity": 10, "mode": DeliveryMode.OWN_DELIVERY,
        "planned_date": date(2026, 1, 10), "status": PledgeStatus.PLEDGED, "version": 1,
    }, overrides)


# -- defaults of every event type -------------------------------------------------------------------------

Defaults = Callable[[], dict[str, Any]]


def _organisation(status: OrganisationStatus) -> Defaults:
    return lambda: {"organisation": organisation_public(status=status)}


def _recipient(status: RecipientStatus) -> Defaults:
    return lambda: {"recipient": recipient_public(status=status), "occurred_at": NOW}


def _need(status: NeedStatus, **extra: Any) -> Defaults:
    return lambda: {"need": need_public(status=status), "occurred_at": NOW, **extra}


def _pledge(status: PledgeStatus, **extra: Any) -> Defaults:
    return lambda: {"pledge": pledge_public(status=status), "occurred_at": NOW, **extra}


FACTORIES: dict[type[Event], Defaults] = {
    OrganisationRegistered: _organisation(OrganisationStatus.ACTIVE),
    OrganisationUpdated: _organisation(OrganisationStatus.ACTIVE),
    OrganisationSuspended: _organisation(OrganisationStatus.SUSPENDED),
    OrganisationReinstated: _organisation(OrganisationStatus.ACTIVE),
    OrganisationContactRecorded: lambda: {
        "organisation_id": ORGANISATION_ID, "contact_name": "Sekretariat", "email": "sekretariat@peduli.example",
        "phone": "021-5551234",
    },
    RecipientRegistered: _recipient(RecipientStatus.REGISTERED),
    RecipientVerified: _recipient(RecipientStatus.VERIFIED),
    RecipientActivated: _recipient(RecipientStatus.ACTIVE),
    RecipientUpdated: _recipient(RecipientStatus.ACTIVE),
    RecipientSuspended: _recipient(RecipientStatus.SUSPENDED),
    RecipientReinstated: _recipient(RecipientStatus.ACTIVE),
    RecipientArchived: _recipient(RecipientStatus.ARCHIVED),
    RecipientContactRecorded: lambda: {
        "recipient_id": RECIPIENT_ID, "organisation_id": ORGANISATION_ID, "contact_name": "Ibu Sari",
        "phone": "0812-3456-7890", "email": "sari@example.org", "street_address": "Jl. Kenari No. 5",
    },
    NeedOpened: _need(NeedStatus.OPEN),
    NeedChanged: _need(NeedStatus.OPEN),
    NeedClosed: _need(NeedStatus.CLOSED, reason="recipient_suspended"),
    NeedCancelled: _need(NeedStatus.CANCELLED, reason="no_longer_needed"),
    NeedFulfilled: _need(NeedStatus.FULFILLED),
    PledgeCreated: _pledge(PledgeStatus.PLEDGED),
    PledgeConfirmed: _pledge(PledgeStatus.CONFIRMED),
    PledgeDispatched: _pledge(PledgeStatus.DISPATCHED),
    PledgeDelivered: lambda: {
        "pledge": pledge_public(status=PledgeStatus.DELIVERED, delivered_quantity=10), "occurred_at": NOW,
        "received_quantity": 10, "proof_ref": "foto-serah-terima-1",
    },
    PledgeCancelled: _pledge(PledgeStatus.CANCELLED, reason="donor_cancelled"),
    PledgeRejected: _pledge(PledgeStatus.REJECTED, reason="not_needed"),
    PledgeExpired: _pledge(PledgeStatus.EXPIRED, reason="not_confirmed"),
    PledgeExpiring: _pledge(PledgeStatus.PLEDGED, expires_at=NOW + timedelta(hours=12)),
    PledgeRestated: _pledge(PledgeStatus.CONFIRMED),
    NeedLedgerChanged: lambda: {
        "need_id": NEED_ID, "recipient_id": RECIPIENT_ID, "requested": 10, "committed": 0, "in_transit": 0,
        "delivered": 0, "ledger_version": 1, "need_status": NeedStatus.OPEN, "occurred_at": NOW,
    },
    DonorProfileUpdated: lambda: {
        "donor_id": DONOR_ID, "kind": DonorKind.COMPANY, "display_name": "PT Sumber Berkah", "show_name": True,
        "version": 1,
    },
    DonorContactRecorded: lambda: {
        "donor_id": DONOR_ID, "name": "Budi Santoso", "email": "budi@sumber-berkah.example", "phone": "0813-1111-2222",
    },
    OfferCreated: lambda: {
        "offer_id": OFFER_ID, "donor_id": DONOR_ID, "item": Item.SEMBAKO, "quantity": 30, "area_codes": [KOTA],
        "available_until": date(2026, 1, 31), "occurred_at": NOW,
    },
    MatchProposed: lambda: {
        "offer_id": OFFER_ID, "donor_id": DONOR_ID, "occurred_at": NOW,
        "allocations": [ProposedAllocation(need_id=NEED_ID, recipient_id=RECIPIENT_ID, quantity=10)],
    },
    MatchAccepted: lambda: {
        "offer_id": OFFER_ID, "donor_id": DONOR_ID, "pledge_ids": [PLEDGE_ID], "occurred_at": NOW,
    },
    MatchDeclined: lambda: {"offer_id": OFFER_ID, "donor_id": DONOR_ID, "occurred_at": NOW},
    WebhookDeliveryFailed: lambda: {
        "endpoint_id": ENDPOINT_ID, "organisation_id": ORGANISATION_ID, "message_id": "msg_1",
        "message_type": PledgeCreated.event_type, "attempts": 8, "occurred_at": NOW,
    },
    WebhookEndpointDisabled: lambda: {
        "endpoint_id": ENDPOINT_ID, "organisation_id": ORGANISATION_ID, "reason": "gone", "occurred_at": NOW,
    },
}


@overload
def make_event(kind: type[EventT], /, **overrides: Any) -> EventT: ...


@overload
def make_event(kind: str, /, **overrides: Any) -> Event: ...


def make_event(kind: type[Event] | str, /, **overrides: Any) -> Event:
    """A valid event of one type (class or CloudEvents type name) with some fields overridden."""
    model = EVENT_TYPES[kind] if isinstance(kind, str) else kind
    defaults = FACTORIES.get(model)
    if defaults is None:
        raise KeyError(f"no test factory for {model.event_type}; add one to ksbb_kit.testing.factories.FACTORIES")
    return build(model, defaults(), overrides)


def every_event() -> list[Event]:
    """One default event of every contract event type."""
    return [make_event(model) for model in EVENT_TYPES.values()]


# -- on the wire ------------------------------------------------------------------------------------------


def envelope(
    event: Event,
    *,
    event_id: str | None = None,
    source: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
) -> CloudEvent:
    """The event's CloudEvents envelope as its owning service publishes it (source `/ksbb/<owner>`).

    `time` defaults to the event's `occurred_at` (or NOW when it has none), so envelopes are reproducible.
    """
    occurred = getattr(event, "occurred_at", None)
    return CloudEvent(
        id=event_id or new_id("evt"),
        source=source or f"/ksbb/{event.topic.owner}",
        type=event.event_type,
        subject=event.subject,
        time=time or (occurred if isinstance(occurred, datetime) else NOW),
        traceparent=traceparent,
        data=event.model_dump(mode="json"),
    )


def consumed_record(
    event: Event | CloudEvent,
    *,
    prefix: str = "",
    partition: int = 0,
    offset: int = 0,
    headers: dict[str, str] | None = None,
) -> ConsumedRecord:
    """The Kafka record a consumer in the namespace `prefix` receives for an event (or a ready envelope)."""
    wrapped = event if isinstance(event, CloudEvent) else envelope(event)
    topic = EVENT_TYPES[wrapped.type].topic.name
    return ConsumedRecord(
        topic=prefix + topic, partition=partition, offset=offset, key=wrapped.subject, value=wrapped.to_bytes(),
        headers={"content-type": CONTENT_TYPE, **(headers or {})},
    )
