"""Which e-mails an event causes, to whom, with what facts; and when a failed send is tried again.

Addresses and confidential contact details are not part of a plan: they are looked up when the
e-mail is sent, so a contact that arrives after the pledge event still gets its e-mail and an erased
contact gets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ksbb_contracts.events.pledges import (
    PledgeCancelled,
    PledgeConfirmed,
    PledgeCreated,
    PledgeDelivered,
    PledgeExpired,
    PledgeExpiring,
    PledgePublic,
)

#: The KSBB rule: the donor calls the recipient's contact within 2×24 hours of pledging.
CALL_WITHIN = timedelta(hours=48)
#: Donors and recipients live in Jakarta: times in e-mails are WIB (UTC+7).
WIB = timedelta(hours=7)
#: How an e-mail greets someone whose contact carries no name.
DEFAULT_GREETING_NAME = "Bapak/Ibu"
#: The recipient contact's fields a donor gets to arrange the handover.
HANDOVER_FIELDS = ("contact_name", "phone", "email", "street_address")


@dataclass(frozen=True)
class Addressee:
    """Who gets one e-mail of a plan: the e-mail kind and the addressee's kind and id."""

    kind: str
    to_kind: str
    to_id: str


@dataclass(frozen=True)
class MailPlan:
    """The e-mails one event causes and the public facts their templates need."""

    context: dict[str, Any]
    addressees: tuple[Addressee, ...]


@dataclass(frozen=True)
class Contact:
    """A confidential contact replica (donor, recipient or organisation)."""

    owner_id: str
    kind: str
    name: str | None = None
    contact_name: str | None = None
    email: str | None = None
    phone: str | None = None
    street_address: str | None = None
    organisation_id: str | None = None

    @property
    def greeting_name(self) -> str:
        """The name an e-mail addresses."""
        return self.name or self.contact_name or DEFAULT_GREETING_NAME

    def handover(self) -> dict[str, Any]:
        """The fields a donor needs to reach this recipient contact."""
        return {key: getattr(self, key) for key in HANDOVER_FIELDS}


@dataclass(frozen=True)
class QueuedEmail:
    """One e-mail in the durable outbox."""

    id: str
    kind: str
    to_kind: str
    to_id: str
    context: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    lease_token: str | None = None


def wib(moment: datetime) -> str:
    """A time as WIB (UTC+7), the time zone donors and recipients live in."""
    return (moment + WIB).strftime("%d-%m-%Y %H:%M WIB")


def _facts(pledge: PledgePublic) -> dict[str, Any]:
    return {
        "pledge_id": pledge.pledge_id,
        "recipient_id": pledge.recipient_id,
        "item": pledge.item.value,
        "quantity": pledge.quantity,
        "planned_date": pledge.planned_date.isoformat(),
    }


def pledge_created_mail(event: PledgeCreated) -> MailPlan:
    """A new pledge: the donor gets the handover contact; the recipient and its organisation are told."""
    pledge = event.pledge
    return MailPlan(
        {**_facts(pledge), "call_by": wib(event.occurred_at + CALL_WITHIN)},
        (
            Addressee("donor_pledge_created", "donor", pledge.donor_id),
            Addressee("pledge_new", "recipient", pledge.recipient_id),
            Addressee("pledge_new", "organisation", pledge.organisation_id),
        ),
    )


def pledge_confirmed_mail(event: PledgeConfirmed) -> MailPlan:
    """The recipient side confirmed: the donor is told."""
    return MailPlan(_facts(event.pledge), (Addressee("donor_pledge_confirmed", "donor", event.pledge.donor_id),))


def pledge_expiring_mail(event: PledgeExpiring) -> MailPlan:
    """A pledge will expire unless acted on: the donor is reminded."""
    return MailPlan(
        {**_facts(event.pledge), "expires_at": wib(event.expires_at)},
        (Addressee("donor_pledge_expiring", "donor", event.pledge.donor_id),),
    )


def pledge_expired_mail(event: PledgeExpired) -> MailPlan:
    """A pledge expired: the donor is told why."""
    return MailPlan(
        {**_facts(event.pledge), "reason": event.reason},
        (Addressee("donor_pledge_expired", "donor", event.pledge.donor_id),),
    )


def pledge_delivered_mail(event: PledgeDelivered) -> MailPlan:
    """The aid arrived: the donor is thanked with the received quantity."""
    return MailPlan(
        {**_facts(event.pledge), "received_quantity": event.received_quantity},
        (Addressee("donor_pledge_delivered", "donor", event.pledge.donor_id),),
    )


def pledge_cancelled_mail(event: PledgeCancelled) -> MailPlan:
    """A pledge was cancelled: the recipient and its organisation are told."""
    pledge = event.pledge
    return MailPlan(
        {**_facts(pledge), "reason": event.reason},
        (
            Addressee("pledge_cancelled", "recipient", pledge.recipient_id),
            Addressee("pledge_cancelled", "organisation", pledge.organisation_id),
        ),
    )


def endpoint_disabled_mail(endpoint_id: str, organisation_id: str | None, url: str, reason: str) -> MailPlan:
    """A disabled endpoint: its organisation is told (endpoints without one have nobody to tell)."""
    addressees = () if organisation_id is None else (Addressee("endpoint_disabled", "organisation", organisation_id),)
    return MailPlan({"endpoint_id": endpoint_id, "url": url, "reason": reason}, addressees)


def needs_handover_contact(kind: str) -> bool:
    """Whether this e-mail kind carries the recipient's contact (the donor must call within 2×24 hours)."""
    return kind == "donor_pledge_created"


def is_last_try(attempts: int, schedule: list[float]) -> bool:
    """Whether attempt number `attempts` (1-based) is the last the e-mail schedule allows."""
    return attempts >= len(schedule)


def after_failed_send(
    attempts: int, schedule: list[float], *, claimed_at: datetime, now: datetime, error: str
) -> dict[str, Any]:
    """What changes after failed attempt number `attempts`: the next try on the schedule, or failed."""
    if is_last_try(attempts, schedule):
        changes: dict[str, Any] = {"status": "failed", "failed_at": claimed_at}
    else:
        changes = {"next_attempt_at": now + timedelta(seconds=schedule[attempts])}
    return {**changes, "last_error": error[:500], "attempts": attempts}
