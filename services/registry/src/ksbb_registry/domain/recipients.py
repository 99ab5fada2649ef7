"""Recipient units: their facts, private contact, audit trail, validation and the events that result."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ksbb_contracts import Event
from ksbb_contracts.events.registry import (
    Beneficiaries,
    RecipientContactRecorded,
    RecipientPublic,
    RecipientRegistered,
    RecipientUpdated,
)
from ksbb_contracts.vocab import RecipientKind, RecipientStatus
from pydantic import BaseModel, ConfigDict

from ksbb_registry.domain import duplicates
from ksbb_registry.domain.areas import Location, validate_coordinates, validate_location
from ksbb_registry.domain.change import Author, Change, changed_fields
from ksbb_registry.domain.errors import ConcurrentChange, DescriptionRequired, RecipientIsArchived, RwRequired

#: Facts that other services see (a change to one of them publishes RecipientUpdated).
PUBLIC_FIELDS = frozenset(
    {"name", "kind_description", "organisation_id", "kelurahan_code", "rw", "rt", "beneficiaries"}
)
#: Changes that republish the confidential contact event.
CONTACT_FIELDS = frozenset({"contact", "street_address", "organisation_id"})
#: Fields a change names although they drive the duplicate keys.
KEY_FIELDS = frozenset({"name", "street_address", "kelurahan_code", "rw"})
#: Optional facts a patch may clear by sending null.
CLEARABLE = frozenset({"kind_description", "notes", "rt"})

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"^(?:\+62|62|0)([1-9]\d{7,11})$")


def normalise_phone(raw: str) -> str:
    """An Indonesian phone number as +62…; raises ValueError for anything else."""
    compact = _PHONE_SEPARATORS.sub("", raw)
    match = _PHONE.fullmatch(compact)
    if not match:
        raise ValueError("not an Indonesian phone number (expected e.g. 0812-3456-7890 or +62 21 1234567)")
    return "+62" + match.group(1)


class ContactPerson(BaseModel):
    """PRIVATE contact person of a recipient unit (phone already normalised)."""

    model_config = ConfigDict(frozen=True)

    name: str
    phone: str
    email: str | None = None


class Coordinates(BaseModel):
    """A WGS 84 point."""

    model_config = ConfigDict(frozen=True)

    lat: float
    lon: float


class AuditEntry(BaseModel):
    """Who changed a recipient, when, from which status to which, and why."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: str
    role: str
    action: str
    from_status: RecipientStatus | None = None
    to_status: RecipientStatus | None = None
    reason: str | None = None
    document_refs: list[str] = []


class Verification(BaseModel):
    """Who verified a recipient, when, with which note and documents."""

    model_config = ConfigDict(frozen=True)

    by: str
    at: datetime
    note: str | None = None
    document_refs: list[str] = []


class Recipient(BaseModel):
    """A recipient unit (the aggregate as stored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

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
    beneficiaries: Beneficiaries
    contact: ContactPerson | None = None
    notes: str | None = None
    status: RecipientStatus
    version: int
    identity_key: str | None = None
    rw_key: str | None = None
    audit: list[AuditEntry] = []
    verification: Verification | None = None
    pending_need_closure: bool = False
    created_at: datetime
    updated_at: datetime

    @property
    def claim_keys(self) -> list[str]:
        """The duplicate keys this recipient holds (see `duplicates`)."""
        return duplicates.claim_keys(self.identity_key, self.rw_key)


class NewRecipient(BaseModel):
    """Command: register a recipient unit."""

    name: str
    kind: RecipientKind
    kind_description: str | None = None
    organisation_id: str
    kelurahan_code: str
    kecamatan_code: str | None = None
    kota_code: str | None = None
    rw: int | None = None
    rt: int | None = None
    street_address: str
    coordinates: Coordinates | None = None
    beneficiaries: Beneficiaries
    contact: ContactPerson
    notes: str | None = None
    duplicate_override_reason: str | None = None


class RecipientPatch(BaseModel):
    """Command: change a recipient; only the fields given are changed (null clears a clearable one)."""

    name: str | None = None
    kind_description: str | None = None
    organisation_id: str | None = None
    kelurahan_code: str | None = None
    rw: int | None = None
    rt: int | None = None
    street_address: str | None = None
    coordinates: Coordinates | None = None
    beneficiaries: Beneficiaries | None = None
    contact: ContactPerson | None = None
    notes: str | None = None

    def changes(self) -> dict[str, Any]:
        """The given fields; null only where it clears an optional fact."""
        given = [name for name in type(self).model_fields if name in self.model_fields_set]
        return {
            name: getattr(self, name)
            for name in given
            if getattr(self, name) is not None or name in CLEARABLE
        }


def validate_kind(kind: RecipientKind, kind_description: str | None, rw: int | None) -> None:
    """`lainnya` needs a description; `rw_rentan` needs an RW number."""
    if kind is RecipientKind.LAINNYA and not (kind_description and kind_description.strip()):
        raise DescriptionRequired("kind 'lainnya' needs a kind_description", field="kind_description")
    if kind is RecipientKind.RW_RENTAN and rw is None:
        raise RwRequired()


def validate_new(command: NewRecipient) -> Location:
    """Check a registration's place, kind and coordinates; returns its location."""
    location = validate_location(
        command.kelurahan_code, kecamatan_code=command.kecamatan_code, kota_code=command.kota_code
    )
    validate_kind(command.kind, command.kind_description, command.rw)
    if command.coordinates:
        validate_coordinates(command.coordinates.lat, command.coordinates.lon)
    return location


def keys_of(command: NewRecipient, location: Location) -> tuple[str, str | None]:
    """The identity and RW duplicate keys of a registration."""
    return (
        duplicates.identity_key(command.name, command.street_address),
        duplicates.rw_key(command.kind, location.kelurahan_code, command.rw),
    )


def complete_changes(current: Recipient, changes: dict[str, Any]) -> dict[str, Any]:
    """Check a patch against the recipient and add what follows from it (area lineage, duplicate keys)."""
    changes = dict(changes)
    if "coordinates" in changes:
        validate_coordinates(changes["coordinates"].lat, changes["coordinates"].lon)
    if "kelurahan_code" in changes:
        location = validate_location(changes["kelurahan_code"])
        changes.update(kecamatan_code=location.kecamatan_code, kota_code=location.kota_code)
    merged = current.model_copy(update=changes)
    validate_kind(merged.kind, merged.kind_description, merged.rw)
    if KEY_FIELDS & set(changes):
        changes["identity_key"] = duplicates.identity_key(merged.name, merged.street_address)
        changes["rw_key"] = duplicates.rw_key(merged.kind, merged.kelurahan_code, merged.rw)
    return changes


def audit_entry(
    author: Author,
    action: str,
    now: datetime,
    from_status: RecipientStatus | None,
    to_status: RecipientStatus | None,
    reason: str | None = None,
    document_refs: list[str] | None = None,
) -> AuditEntry:
    """One audit trail entry."""
    return AuditEntry(
        at=now,
        actor=author.subject,
        role=author.role,
        action=action,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        document_refs=document_refs or [],
    )


def public(recipient: Recipient) -> RecipientPublic:
    """The public snapshot carried by recipient events (never contact or notes)."""
    return RecipientPublic(
        recipient_id=recipient.recipient_id,
        name=recipient.name,
        kind=recipient.kind,
        kind_description=recipient.kind_description,
        organisation_id=recipient.organisation_id,
        kelurahan_code=recipient.kelurahan_code,
        rw=recipient.rw,
        rt=recipient.rt,
        beneficiaries=recipient.beneficiaries,
        status=recipient.status,
        version=recipient.version,
    )


def contact_recorded(recipient: Recipient) -> RecipientContactRecorded:
    """The confidential contact event of a recipient (it must still have a contact)."""
    contact = recipient.contact
    if contact is None:
        raise ValueError(f"recipient {recipient.recipient_id} has no contact to record")
    return RecipientContactRecorded(
        recipient_id=recipient.recipient_id,
        organisation_id=recipient.organisation_id,
        contact_name=contact.name,
        phone=contact.phone,
        email=contact.email,
        street_address=recipient.street_address,
    )


def register(
    recipient_id: str,
    command: NewRecipient,
    location: Location,
    keys: tuple[str, str | None],
    author: Author,
    now: datetime,
    overridden: list[str],
) -> Change[Recipient]:
    """A new registered recipient with its audit trail and events; `overridden` names the holders of keys
    an admin registered it despite (it is registered without those keys' claims)."""
    audit = [audit_entry(author, "register", now, None, RecipientStatus.REGISTERED)]
    if overridden:
        audit.append(
            audit_entry(
                author, "duplicate_override", now, None, None, command.duplicate_override_reason, overridden
            )
        )
    recipient = Recipient(
        recipient_id=recipient_id,
        name=command.name,
        kind=command.kind,
        kind_description=command.kind_description,
        organisation_id=command.organisation_id,
        kelurahan_code=location.kelurahan_code,
        kecamatan_code=location.kecamatan_code,
        kota_code=location.kota_code,
        rw=command.rw,
        rt=command.rt,
        street_address=command.street_address,
        coordinates=command.coordinates,
        beneficiaries=command.beneficiaries,
        contact=command.contact,
        notes=command.notes,
        status=RecipientStatus.REGISTERED,
        version=1,
        identity_key=keys[0],
        rw_key=keys[1],
        audit=audit,
        created_at=now,
        updated_at=now,
    )
    return Change(
        after=recipient,
        events=(
            RecipientRegistered(recipient=public(recipient), occurred_at=now),
            contact_recorded(recipient),
        ),
    )


def revise(
    current: Recipient,
    changes: dict[str, Any],
    author: Author,
    now: datetime,
    version: int,
    *,
    decided_on_keys: tuple[str | None, str | None] | None = None,
) -> Change[Recipient] | None:
    """Apply a completed patch; None when nothing differs. `decided_on_keys` are the duplicate keys the
    caller's claims were based on: if they changed meanwhile the claims are wrong and the change refused."""
    if current.status is RecipientStatus.ARCHIVED:
        raise RecipientIsArchived()
    if decided_on_keys is not None and (current.identity_key, current.rw_key) != decided_on_keys:
        raise ConcurrentChange("the recipient changed meanwhile; try again")
    after = current.model_copy(update={**changes, "version": version})
    fields = changed_fields(current, after, changes)
    if not fields:
        return None
    events: list[Event] = []
    if PUBLIC_FIELDS & set(fields):
        events.append(RecipientUpdated(recipient=public(after), occurred_at=now))
    if CONTACT_FIELDS & set(fields):
        events.append(contact_recorded(after))
    described = ", ".join(sorted(name for name in fields if not name.endswith("_key")))
    entry = audit_entry(author, "update", now, current.status, current.status, "changed: " + described)
    return Change(after=after, fields=fields, appended=(("audit", entry),), events=tuple(events))
