"""Events of the pledges service: pledges, the need ledger, donors, offers and matching."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from ksbb_contracts import topics
from ksbb_contracts.events.base import Event
from ksbb_contracts.events.registry import public_state_digest
from ksbb_contracts.vocab import DeliveryMode, DonorKind, Item, NeedStatus, PledgeStatus

__all__ = [
    "DonorContactRecorded",
    "DonorProfileUpdated",
    "MatchAccepted",
    "MatchDeclined",
    "MatchProposed",
    "NeedLedgerChanged",
    "OfferCreated",
    "PledgeCancelled",
    "PledgeConfirmed",
    "PledgeCreated",
    "PledgeDelivered",
    "PledgeDispatched",
    "PledgeExpired",
    "PledgeExpiring",
    "PledgePublic",
    "PledgeRejected",
    "PledgeRestated",
    "ProposedAllocation",
    "donor_profile_digest",
    "ledger_figures_digest",
    "pledge_state_digest",
]


class PledgePublic(BaseModel):
    """Public facts about a pledge; the donor's name is resolved through the donor profile."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    pledge_id: str
    need_id: str
    recipient_id: str
    organisation_id: str
    donor_id: str
    kelurahan_code: str
    item: Item
    quantity: int = Field(ge=1)
    delivered_quantity: int | None = Field(default=None, ge=0)
    mode: DeliveryMode
    planned_date: date
    status: PledgeStatus
    version: int = Field(ge=1)


def pledge_state_digest(pledge: PledgePublic) -> str:
    """The digest of a pledge's public state (all but `version`): equal states give equal digests everywhere."""
    return public_state_digest(pledge)


class _PledgeEvent(Event):
    topic = topics.PLEDGES
    subject_field = "pledge.pledge_id"
    pledge: PledgePublic
    occurred_at: datetime
    state_digest: str | None = Field(
        default=None,
        description="Digest of the pledge's public state without its version (pledge_state_digest); absent "
        "from events of older producers, consumers then compute it from the pledge.",
    )
    restated: bool = Field(
        default=False,
        description="Re-published current state (the pledges service's anti-entropy job), not a change: only "
        "ksbb.pledge.restated.v1 carries true. Consumers whose view differs apply it even at a version they "
        "already hold or a newer one.",
    )

    def pledge_digest(self) -> str:
        """The digest of this event's pledge (computed, so events without `state_digest` compare too)."""
        return pledge_state_digest(self.pledge)

    @property
    def need_id(self) -> str:
        """The need this pledge is for."""
        return self.pledge.need_id

    @property
    def recipient_id(self) -> str:
        """The recipient this pledge is for."""
        return self.pledge.recipient_id


class PledgeCreated(_PledgeEvent):
    """A donor pledged goods to a need; the quantity is reserved."""

    event_type = "ksbb.pledge.created.v1"


class PledgeConfirmed(_PledgeEvent):
    """The recipient or its facilitator confirmed the pledge."""

    event_type = "ksbb.pledge.confirmed.v1"


class PledgeDispatched(_PledgeEvent):
    """The goods are on their way."""

    event_type = "ksbb.pledge.dispatched.v1"


class PledgeDelivered(_PledgeEvent):
    """Receipt confirmed, with the quantity actually received."""

    event_type = "ksbb.pledge.delivered.v1"
    received_quantity: int = Field(ge=0)
    proof_ref: str | None = None


class PledgeCancelled(_PledgeEvent):
    """The donor cancelled, or the need/recipient went away; reservation released."""

    event_type = "ksbb.pledge.cancelled.v1"
    reason: str = Field(description="Reason code, e.g. donor_cancelled, need_closed, recipient_suspended.")


class PledgeRejected(_PledgeEvent):
    """The recipient or facilitator rejected the pledge."""

    event_type = "ksbb.pledge.rejected.v1"
    reason: str


class PledgeExpired(_PledgeEvent):
    """The pledge was not confirmed or dispatched in time; reservation released."""

    event_type = "ksbb.pledge.expired.v1"
    reason: str = Field(description="not_confirmed or not_dispatched.")


class PledgeExpiring(_PledgeEvent):
    """The pledge will expire soon unless acted on (donor reminder)."""

    event_type = "ksbb.pledge.expiring.v1"
    expires_at: datetime


class PledgeRestated(_PledgeEvent):
    """The pledges service re-published a pledge's current state (anti-entropy, ADR 0005): not a change.

    Consumers holding a view of the pledge apply it when their view differs (a missing pledge, another status
    or quantity at the same version, a version the owner no longer has); it causes no e-mail, no webhook and
    no feed entry.
    """

    event_type = "ksbb.pledge.restated.v1"
    restated: bool = Field(default=True, description="Always true: this type only restates current state.")


def ledger_figures_digest(requested: int, committed: int, in_transit: int, delivered: int) -> str:
    """The digest of a need's ledger figures: equal figures give equal digests, in every service."""
    figures = f"{requested}:{committed}:{in_transit}:{delivered}"
    return hashlib.sha256(figures.encode()).hexdigest()[:16]


class NeedLedgerChanged(Event):
    """A need's quantities changed; `ledger_version` increases with every change.

    After a database crash the owner may reuse a version with other figures: a consumer that holds this
    `ledger_version` with figures of another `ledger_digest` applies the event anyway (the owner is
    authoritative). A `restated` event is the owner's anti-entropy job re-publishing its current state: a
    consumer whose figures differ applies it whatever version it holds.
    """

    event_type = "ksbb.need_ledger.changed.v1"
    topic = topics.LEDGER
    subject_field = "need_id"

    need_id: str
    recipient_id: str
    requested: int = Field(ge=0)
    committed: int = Field(ge=0)
    in_transit: int = Field(ge=0)
    delivered: int = Field(ge=0)
    ledger_version: int = Field(ge=1)
    need_status: NeedStatus
    occurred_at: datetime
    ledger_digest: str | None = Field(
        default=None,
        description="Digest of requested, committed, in_transit and delivered (ledger_figures_digest); "
        "absent from events of older producers.",
    )
    restated: bool = Field(
        default=False,
        description="Re-published current state (anti-entropy), not a change: consumers whose figures "
        "differ apply it even at a version they already hold or a newer one.",
    )

    def figures_digest(self) -> str:
        """The digest of this event's figures (computed, so events without `ledger_digest` compare too)."""
        return ledger_figures_digest(self.requested, self.committed, self.in_transit, self.delivered)


def donor_profile_digest(donor_id: str, kind: DonorKind | str, display_name: str | None, show_name: bool) -> str:
    """The digest of a donor's public profile (the name only as published: None unless the donor opted in)."""
    shown = display_name if show_name else None
    state = {"donor_id": donor_id, "kind": DonorKind(kind).value, "display_name": shown, "show_name": show_name}
    canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class DonorProfileUpdated(Event):
    """A donor's public profile; `display_name` is set only if the donor opted in."""

    event_type = "ksbb.donor.profile_updated.v1"
    topic = topics.DONORS
    subject_field = "donor_id"

    donor_id: str
    kind: DonorKind
    display_name: str | None = None
    show_name: bool = False
    version: int = Field(ge=1)
    state_digest: str | None = Field(
        default=None,
        description="Digest of the public profile without its version (donor_profile_digest); absent from "
        "events of older producers, consumers then compute it from the profile.",
    )
    restated: bool = Field(
        default=False,
        description="Re-published current profile (the pledges service's anti-entropy job), not a change: "
        "consumers whose view differs apply it even at a version they already hold or a newer one.",
    )

    def profile_digest(self) -> str:
        """The digest of this event's public profile (computed, so events without `state_digest` compare)."""
        return donor_profile_digest(self.donor_id, self.kind, self.display_name, self.show_name)


class DonorContactRecorded(Event):
    """CONFIDENTIAL: a donor's coordination contact (compacted topic; tombstone erases)."""

    event_type = "ksbb.donor_contact.recorded.v1"
    topic = topics.DONOR_CONTACTS
    subject_field = "donor_id"

    donor_id: str
    name: str
    email: str | None = None
    phone: str | None = None


class OfferCreated(Event):
    """A donor offered goods for the platform to match."""

    event_type = "ksbb.offer.created.v1"
    topic = topics.OFFERS
    subject_field = "offer_id"

    offer_id: str
    donor_id: str
    item: Item
    quantity: int = Field(ge=1)
    area_codes: list[str] = Field(default_factory=list, description="Preferred kota/kecamatan codes; empty = anywhere.")
    available_until: date
    occurred_at: datetime


class ProposedAllocation(BaseModel):
    """One part of an offer proposed for one need."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    need_id: str
    recipient_id: str
    quantity: int = Field(ge=1)


class MatchProposed(Event):
    """The matching engine proposed allocations of an offer."""

    event_type = "ksbb.match.proposed.v1"
    topic = topics.OFFERS
    subject_field = "offer_id"

    offer_id: str
    donor_id: str
    allocations: list[ProposedAllocation]
    occurred_at: datetime


class MatchAccepted(Event):
    """The donor accepted proposals; they became pledges."""

    event_type = "ksbb.match.accepted.v1"
    topic = topics.OFFERS
    subject_field = "offer_id"

    offer_id: str
    donor_id: str
    pledge_ids: list[str]
    dropped_need_ids: list[str] = Field(default_factory=list)
    occurred_at: datetime


class MatchDeclined(Event):
    """The donor declined the proposals."""

    event_type = "ksbb.match.declined.v1"
    topic = topics.OFFERS
    subject_field = "offer_id"

    offer_id: str
    donor_id: str
    occurred_at: datetime
