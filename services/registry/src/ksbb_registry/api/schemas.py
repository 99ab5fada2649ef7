"""Request and response models of the registry HTTP API (private fields only where they belong)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Generic, Literal, TypeVar

from ksbb_contracts import limits as L
from ksbb_contracts.limits import StrictCount, StrictNumber
from ksbb_contracts.vocab import (
    Item,
    NeedStatus,
    OrganisationKind,
    OrganisationStatus,
    Priority,
    RecipientKind,
    RecipientStatus,
    Recurrence,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ksbb_registry.domain.recipients import normalise_phone

EMAIL_PATTERN = L.EMAIL_PATTERN
T = TypeVar("T")
#: A reference to a supporting document (an archive number or a link).
DocumentRef = Annotated[str, Field(min_length=1, max_length=L.DOCUMENT_REF_MAX)]
#: A Kemendagri area code.
AreaCode = Annotated[str, Field(max_length=L.AREA_CODE_MAX)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Coordinates(_In):
    """WGS 84 point; must lie inside DKI Jakarta's bounding box."""

    lat: StrictNumber = Field(ge=-90, le=90)
    lon: StrictNumber = Field(ge=-180, le=180)


class ContactPerson(_In):
    """PRIVATE contact person of a recipient unit."""

    name: str = Field(min_length=1, max_length=L.PERSON_NAME_MAX)
    phone: str = Field(
        max_length=L.PHONE_MAX, description="Indonesian number, e.g. 0812-3456-7890; stored as +62…"
    )
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=L.EMAIL_MAX)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalise_phone(value)


class BeneficiaryCounts(_In):
    """Households (KK), people and vulnerable groups served; each group is part of `people` (give `people`
    to count children, elderly or disabled residents)."""

    households: StrictCount = Field(ge=0, le=L.HOUSEHOLDS_MAX)
    people: StrictCount = Field(ge=0, le=L.PEOPLE_MAX)
    children: StrictCount = Field(default=0, ge=0, le=L.PEOPLE_MAX, description="At most `people`.")
    elderly: StrictCount = Field(default=0, ge=0, le=L.PEOPLE_MAX, description="At most `people`.")
    disabled: StrictCount = Field(default=0, ge=0, le=L.PEOPLE_MAX, description="At most `people`.")

    @model_validator(mode="after")
    def _consistent(self) -> BeneficiaryCounts:
        if self.households == 0 and self.people == 0:
            raise ValueError("households or people must be given")
        if self.people and self.households > self.people:
            raise ValueError("households cannot exceed people")
        for group in ("children", "elderly", "disabled"):
            # Also when `people` is 0: a group of people is never larger than the people counted.
            if getattr(self, group) > self.people:
                raise ValueError(f"{group} cannot exceed people")
        return self


class RecipientCreate(_In):
    """Register a recipient unit."""

    name: str = Field(min_length=L.RECIPIENT_NAME[0], max_length=L.RECIPIENT_NAME[1])
    kind: RecipientKind
    kind_description: str | None = Field(default=None, max_length=L.DESCRIPTION_MAX)
    organisation_id: str = Field(
        min_length=L.ID[0], max_length=L.ID[1], description="Responsible facilitator organisation."
    )
    kelurahan_code: str = Field(
        max_length=L.AREA_CODE_MAX, description="Kemendagri kelurahan code, e.g. 31.71.01.1001."
    )
    kecamatan_code: str | None = Field(
        default=None, max_length=L.AREA_CODE_MAX, description="Optional; checked against the kelurahan."
    )
    kota_code: str | None = Field(
        default=None, max_length=L.AREA_CODE_MAX, description="Optional; checked against the kelurahan."
    )
    rw: StrictCount | None = Field(default=None, ge=L.RW_RT[0], le=L.RW_RT[1])
    rt: StrictCount | None = Field(default=None, ge=L.RW_RT[0], le=L.RW_RT[1])
    street_address: str = Field(min_length=L.STREET_ADDRESS[0], max_length=L.STREET_ADDRESS[1])
    coordinates: Coordinates | None = None
    beneficiaries: BeneficiaryCounts
    contact: ContactPerson
    notes: str | None = Field(default=None, max_length=L.NOTES_MAX)
    duplicate_override_reason: str | None = Field(
        default=None,
        max_length=L.DUPLICATE_OVERRIDE_REASON_MAX,
        description="Admins only: register despite a suspected duplicate.",
    )


class RecipientUpdate(_In):
    """Change a recipient; every field optional. A recipient's own account may change only `contact`."""

    name: str | None = Field(default=None, min_length=L.RECIPIENT_NAME[0], max_length=L.RECIPIENT_NAME[1])
    kind_description: str | None = Field(default=None, max_length=L.DESCRIPTION_MAX)
    organisation_id: str | None = Field(
        default=None, min_length=L.ID[0], max_length=L.ID[1], description="Admins only."
    )
    kelurahan_code: str | None = Field(default=None, max_length=L.AREA_CODE_MAX)
    rw: StrictCount | None = Field(default=None, ge=L.RW_RT[0], le=L.RW_RT[1])
    rt: StrictCount | None = Field(default=None, ge=L.RW_RT[0], le=L.RW_RT[1])
    street_address: str | None = Field(
        default=None, min_length=L.STREET_ADDRESS[0], max_length=L.STREET_ADDRESS[1]
    )
    coordinates: Coordinates | None = None
    beneficiaries: BeneficiaryCounts | None = None
    contact: ContactPerson | None = None
    notes: str | None = Field(default=None, max_length=L.NOTES_MAX)


class TransitionRequest(_In):
    """A lifecycle step with an optional note and optional document references (activate, reinstate)."""

    reason: str | None = Field(default=None, max_length=L.TRANSITION_REASON_MAX)
    document_refs: list[DocumentRef] = Field(default_factory=list, max_length=L.DOCUMENT_REFS_MAX)


class ReasonedTransitionRequest(TransitionRequest):
    """A lifecycle step that needs its note or reason (verify, suspend, archive)."""

    reason: str = Field(min_length=1, max_length=L.TRANSITION_REASON_MAX)


class AuditEntry(BaseModel):
    """Who changed a recipient, when, from which status to which, and why."""

    at: datetime
    actor: str
    role: str
    action: str
    from_status: RecipientStatus | None = None
    to_status: RecipientStatus | None = None
    reason: str | None = None
    document_refs: list[str] = Field(default_factory=list)


class RecipientOut(BaseModel):
    """A recipient as admins, its facilitators and its own account see it (includes the contact)."""

    recipient_id: str
    name: str
    kind: RecipientKind
    kind_description: str | None = None
    organisation_id: str
    kelurahan_code: str
    kecamatan_code: str
    kota_code: str
    rw: int | None = None
    rt: int | None = None
    street_address: str
    coordinates: Coordinates | None = None
    beneficiaries: BeneficiaryCounts
    contact: ContactPerson | None = None
    notes: str | None = None
    status: RecipientStatus
    version: int
    created_at: datetime
    updated_at: datetime


class NeedCreate(_In):
    """Post a need for an active recipient."""

    item: Item
    item_description: str | None = Field(default=None, max_length=L.DESCRIPTION_MAX)
    quantity: StrictCount = Field(ge=L.QUANTITY[0], le=L.QUANTITY[1])
    unit: str | None = Field(
        default=None, max_length=L.UNIT_MAX, description="Defaults to the catalogue unit."
    )
    priority: Priority = Priority.MEDIUM
    needed_by: date = Field(description=f"Not in the past; {L.HORIZON_TEXT}.")
    recurrence: Recurrence = Recurrence.NONE
    notes: str | None = Field(default=None, max_length=L.NOTES_MAX)


class NeedUpdate(_In):
    """Change an open need."""

    quantity: StrictCount | None = Field(default=None, ge=L.QUANTITY[0], le=L.QUANTITY[1])
    unit: str | None = Field(default=None, max_length=L.UNIT_MAX)
    priority: Priority | None = None
    needed_by: date | None = Field(default=None, description=f"Not in the past; {L.HORIZON_TEXT}.")
    item_description: str | None = Field(default=None, max_length=L.DESCRIPTION_MAX)
    notes: str | None = Field(default=None, max_length=L.NOTES_MAX)


class CancelRequest(_In):
    """Why a need is cancelled."""

    reason: str = Field(min_length=L.NEED_CANCEL_REASON[0], max_length=L.NEED_CANCEL_REASON[1])


class LedgerOut(BaseModel):
    """Quantities as published by the pledges service."""

    requested: int
    committed: int
    in_transit: int
    delivered: int
    ledger_version: int


class NeedOut(BaseModel):
    """A need with its ledger quantities."""

    need_id: str
    recipient_id: str
    organisation_id: str
    kelurahan_code: str
    kecamatan_code: str
    kota_code: str
    rw: int | None = None
    item: Item
    item_description: str | None = None
    quantity: int
    unit: str
    priority: Priority
    needed_by: date
    recurrence: Recurrence
    series_id: str | None = None
    period_start: date | None = None
    status: NeedStatus
    status_reason: str | None = None
    notes: str | None = None
    ledger: LedgerOut
    version: int
    created_at: datetime
    updated_at: datetime


class OrganisationContact(_In):
    """Confidential contact of an organisation (goes to the notifier only)."""

    name: str | None = Field(default=None, max_length=L.PERSON_NAME_MAX)
    email: str = Field(pattern=EMAIL_PATTERN, max_length=L.EMAIL_MAX)
    phone: str | None = Field(default=None, max_length=L.PHONE_MAX)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else normalise_phone(value)


class OrganisationCreate(_In):
    """Register a facilitator organisation."""

    name: str = Field(min_length=L.ORGANISATION_NAME[0], max_length=L.ORGANISATION_NAME[1])
    kind: OrganisationKind
    contact: OrganisationContact
    area_codes: list[AreaCode] = Field(default_factory=list, max_length=L.AREA_CODES_MAX)


class OrganisationUpdate(_In):
    """Change an organisation; every field optional."""

    name: str | None = Field(
        default=None, min_length=L.ORGANISATION_NAME[0], max_length=L.ORGANISATION_NAME[1]
    )
    kind: OrganisationKind | None = None
    contact: OrganisationContact | None = None
    area_codes: list[AreaCode] | None = Field(default=None, max_length=L.AREA_CODES_MAX)


class OrganisationStatusChange(_In):
    """Why an organisation is suspended or reinstated."""

    reason: str = Field(
        min_length=L.ORGANISATION_STATUS_REASON[0], max_length=L.ORGANISATION_STATUS_REASON[1]
    )


class OrganisationOut(BaseModel):
    """A facilitator organisation."""

    organisation_id: str
    name: str
    kind: OrganisationKind
    contact: OrganisationContact
    area_codes: list[str]
    status: OrganisationStatus
    version: int
    created_at: datetime
    updated_at: datetime


class ReportCreate(_In):
    """A concern about a recipient from the public (no login)."""

    text: str = Field(min_length=L.REPORT_TEXT[0], max_length=L.REPORT_TEXT[1])
    contact: str | None = Field(
        default=None, max_length=L.REPORT_CONTACT_MAX, description="Optional way to reach the reporter."
    )


class ReportResolve(_In):
    """How a report was resolved."""

    outcome: Literal["dismissed", "corrected", "recipient_suspended", "recipient_archived"]
    note: str = Field(min_length=L.RESOLUTION_NOTE[0], max_length=L.RESOLUTION_NOTE[1])


class ReportReceipt(BaseModel):
    """What an anonymous reporter gets back."""

    report_id: str
    status: Literal["open", "resolved"]


class ReportOut(BaseModel):
    """A concern report as reviewers see it."""

    report_id: str
    recipient_id: str
    organisation_id: str
    text: str
    contact: str | None = None
    status: Literal["open", "resolved"]
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    outcome: str | None = None
    resolution_note: str | None = None


class CatalogueItemOut(BaseModel):
    """One catalogue item."""

    item: Item
    name_id: str
    name_en: str
    unit: str
    reference_price_idr: int | None = None
    basis: str | None = None


class SuggestionOut(BaseModel):
    """A suggested need computed from beneficiary counts."""

    item: Item
    quantity: int
    unit: str
    recurrence: Recurrence
    priority: Priority
    estimated_value_idr: int
    rationale: str


class AreaOut(BaseModel):
    """One administrative area."""

    code: str
    name: str
    level: str
    parent: str | None = None


class Page(BaseModel, Generic[T]):
    """A page of a list; pass `next_cursor` as `cursor` for the next page (null at the end)."""

    items: list[T]
    next_cursor: str | None = None
