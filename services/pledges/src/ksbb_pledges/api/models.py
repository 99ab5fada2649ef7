"""Request and response models of the pledges API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from ksbb_contracts import limits as L
from ksbb_contracts.areas import areas
from ksbb_contracts.limits import StrictCount, StrictFlag
from ksbb_contracts.vocab import DeliveryMode, DonorKind, Item, NeedStatus, PledgeStatus
from pydantic import BaseModel, ConfigDict, Field, field_validator


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DonorContactIn(_In):
    """CONFIDENTIAL coordination contact of a donor."""

    name: str = Field(min_length=1, max_length=L.PERSON_NAME_MAX)
    email: str | None = Field(default=None, pattern=L.EMAIL_PATTERN, max_length=L.EMAIL_MAX)
    phone: str | None = Field(default=None, pattern=L.PHONE_PATTERN, max_length=L.PHONE_MAX)


class DonorProfileIn(_In):
    """A donor's profile; the name appears in the public feed only if `show_name` is true."""

    kind: DonorKind
    display_name: str = Field(min_length=L.DISPLAY_NAME[0], max_length=L.DISPLAY_NAME[1])
    show_name: StrictFlag = Field(
        default=False, description="Opt in to showing the name publicly (default anonymous)."
    )
    contact: DonorContactIn | None = None


class DonorProfileOut(BaseModel):
    """A donor's own view of their profile."""

    donor_id: str
    kind: DonorKind
    display_name: str
    show_name: bool
    contact: DonorContactIn | None = None
    version: int


class PledgeIn(_In):
    """A pledge of goods to one need."""

    need_id: str = Field(min_length=L.ID[0], max_length=L.ID[1])
    quantity: StrictCount = Field(ge=L.QUANTITY[0], le=L.QUANTITY[1])
    planned_date: date = Field(description=f"When the donor plans to deliver: not in the past, {L.HORIZON_TEXT}.")
    mode: DeliveryMode = DeliveryMode.OWN_DELIVERY
    note: str | None = Field(default=None, max_length=L.PLEDGE_NOTE_MAX)


class HistoryEntry(BaseModel):
    """One audited step of a pledge."""

    status: PledgeStatus
    at: datetime
    by: str
    reason: str | None = None
    received_quantity: int | None = None
    proof_ref: str | None = None


class PledgeOut(BaseModel):
    """A pledge as its donor, recipient, facilitator or an admin sees it."""

    pledge_id: str
    need_id: str
    recipient_id: str
    organisation_id: str
    donor_id: str
    item: Item
    quantity: int
    delivered_quantity: int | None = None
    mode: DeliveryMode
    planned_date: date
    status: PledgeStatus
    version: int
    reason: str | None = None
    proof_ref: str | None = None
    offer_id: str | None = None
    note: str | None = None
    created_at: datetime
    updated_at: datetime
    history: list[HistoryEntry] = Field(default_factory=list)

    @classmethod
    def of(cls, ledger: dict[str, Any], pledge: dict[str, Any]) -> PledgeOut:
        """From an embedded pledge and its ledger."""
        return cls.model_validate(
            {
                **pledge,
                "need_id": ledger["_id"],
                "recipient_id": ledger["recipient_id"],
                "organisation_id": ledger["organisation_id"],
                "item": ledger["item"],
            }
        )

    @classmethod
    def of_copy(cls, copy: dict[str, Any]) -> PledgeOut:
        """From a derived per-pledge copy."""
        return cls.model_validate({**copy, "pledge_id": copy["_id"]})


class PledgePage(BaseModel):
    """A page of pledges; pass `next_cursor` as `cursor` for the next page."""

    items: list[PledgeOut]
    next_cursor: str | None = None


class DeliverIn(_In):
    """Receipt of a dispatched pledge."""

    received_quantity: StrictCount = Field(
        ge=0, le=L.QUANTITY[1], description="What actually arrived; may be less than pledged."
    )
    proof_ref: str | None = Field(
        default=None, max_length=L.PROOF_REF_MAX, description="Reference to a photo or document."
    )


class ReasonIn(_In):
    """Why a pledge is rejected."""

    reason: str = Field(min_length=L.PLEDGE_REASON[0], max_length=L.PLEDGE_REASON[1])


class CancelIn(_In):
    """Why the donor cancels (optional)."""

    reason: str | None = Field(default=None, max_length=L.PLEDGE_REASON[1])


class LedgerOut(BaseModel):
    """Public quantities of a need (Sahana-style)."""

    need_id: str
    recipient_id: str
    organisation_id: str
    kelurahan_code: str
    item: Item
    unit: str | None = None
    requested: int
    committed: int
    in_transit: int
    delivered: int
    remaining: int
    ledger_version: int
    status: NeedStatus

    @classmethod
    def of(cls, ledger: dict[str, Any]) -> LedgerOut:
        """From a ledger document."""
        return cls.model_validate(
            {
                **ledger,
                "need_id": ledger["_id"],
                "remaining": max(ledger["requested"] - ledger["committed"], 0),
            }
        )


class RecipientContactOut(BaseModel):
    """CONFIDENTIAL: the recipient's contact person, for the pledging donor only."""

    recipient_id: str
    contact_name: str
    phone: str
    email: str | None = None
    street_address: str | None = None
    contact_within_hours: int = Field(default=48, description="Please contact the location within 2×24 hours.")
    access_ends_at: datetime | None = Field(
        default=None,
        description="When this contact stops being available: a set number of days after the delivery "
        "(null while the pledge is on its way).",
    )


class OfferIn(_In):
    """Goods a donor offers for the platform to match."""

    item: Item
    quantity: StrictCount = Field(ge=L.QUANTITY[0], le=L.QUANTITY[1])
    area_codes: list[Annotated[str, Field(max_length=L.AREA_CODE_MAX)]] = Field(
        default_factory=list,
        max_length=L.OFFER_AREA_CODES_MAX,
        description="Kota or kecamatan codes to give in; empty = anywhere in Jakarta.",
    )
    available_until: date = Field(description=f"Not in the past; {L.HORIZON_TEXT}.")

    @field_validator("area_codes")
    @classmethod
    def _known_areas(cls, codes: list[str]) -> list[str]:
        for code in codes:
            area = areas().get(code)
            if area is None or area.level not in ("kota", "kecamatan"):
                raise ValueError(f"{code} is not a kota or kecamatan code of DKI Jakarta")
        return sorted(set(codes))


class ProposalOut(BaseModel):
    """A proposed part of an offer for one need."""

    need_id: str
    recipient_id: str
    quantity: int


class DroppedOut(BaseModel):
    """A proposal that could not become a pledge at acceptance."""

    need_id: str
    reason: str


class OfferOut(BaseModel):
    """An offer with its proposals and, once accepted, its pledges."""

    offer_id: str
    donor_id: str
    item: Item
    quantity: int
    area_codes: list[str]
    available_until: date
    status: str = Field(description="proposed, unmatched, accepting, accepted or declined.")
    proposals: list[ProposalOut]
    pledge_ids: list[str] = Field(default_factory=list)
    dropped: list[DroppedOut] = Field(default_factory=list)
    created_at: datetime

    @classmethod
    def of(cls, offer: dict[str, Any]) -> OfferOut:
        """From an offer document."""
        return cls.model_validate({**offer, "offer_id": offer["_id"]})


class OfferPage(BaseModel):
    """A page of offers."""

    items: list[OfferOut]
    next_cursor: str | None = None


class AcceptIn(_In):
    """How the accepted proposals are delivered."""

    planned_date: date | None = Field(
        default=None,
        description=f"Not in the past, {L.HORIZON_TEXT}; defaults to a few days ahead within the offer's "
        "available-until date.",
    )
    mode: DeliveryMode = DeliveryMode.OWN_DELIVERY
