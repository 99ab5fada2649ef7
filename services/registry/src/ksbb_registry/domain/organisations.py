"""Facilitator organisations: their facts, confidential contact, status changes and the events that result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ksbb_contracts import Event
from ksbb_contracts.events.registry import (
    OrganisationContactRecorded,
    OrganisationPublic,
    OrganisationRegistered,
    OrganisationReinstated,
    OrganisationSuspended,
    OrganisationUpdated,
)
from ksbb_contracts.vocab import OrganisationKind, OrganisationStatus
from pydantic import BaseModel, ConfigDict

from ksbb_registry.domain.areas import validate_area_codes
from ksbb_registry.domain.change import Author, Change, changed_fields
from ksbb_registry.domain.errors import OrganisationStatusUnchanged

#: Facts that other services see (a change to one of them publishes OrganisationUpdated).
PUBLIC_FIELDS = ("name", "kind", "area_codes")


class OrganisationContact(BaseModel):
    """CONFIDENTIAL contact of an organisation (published on the contacts topic only)."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    email: str
    phone: str | None = None


class StatusChange(BaseModel):
    """One entry of an organisation's status history."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: str
    status: OrganisationStatus
    reason: str


class Organisation(BaseModel):
    """A facilitator organisation (the aggregate as stored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    organisation_id: str
    name: str
    kind: OrganisationKind
    contact: OrganisationContact
    area_codes: list[str]
    status: OrganisationStatus
    version: int
    created_at: datetime
    updated_at: datetime
    status_history: list[StatusChange] = []


class NewOrganisation(BaseModel):
    """Command: register a facilitator organisation."""

    name: str
    kind: OrganisationKind
    contact: OrganisationContact
    area_codes: list[str] = []


class OrganisationPatch(BaseModel):
    """Command: change an organisation; only the fields given are changed."""

    name: str | None = None
    kind: OrganisationKind | None = None
    contact: OrganisationContact | None = None
    area_codes: list[str] | None = None

    def changes(self) -> dict[str, Any]:
        """The given, non-empty fields, with area codes checked and normalised."""
        given = [name for name in type(self).model_fields if name in self.model_fields_set]
        changes = {name: getattr(self, name) for name in given if getattr(self, name) is not None}
        if "area_codes" in changes:
            changes["area_codes"] = validate_area_codes(changes["area_codes"])
        return changes


def public(organisation: Organisation) -> OrganisationPublic:
    """The public snapshot carried by organisation events."""
    return OrganisationPublic(
        organisation_id=organisation.organisation_id,
        name=organisation.name,
        kind=organisation.kind,
        area_codes=organisation.area_codes,
        status=organisation.status,
        version=organisation.version,
    )


def contact_recorded(organisation: Organisation) -> OrganisationContactRecorded:
    """The confidential contact event of an organisation."""
    contact = organisation.contact
    return OrganisationContactRecorded(
        organisation_id=organisation.organisation_id,
        contact_name=contact.name,
        email=contact.email,
        phone=contact.phone,
    )


def register(organisation_id: str, command: NewOrganisation, now: datetime) -> Change[Organisation]:
    """A new, active organisation and its registration and contact events."""
    organisation = Organisation(
        organisation_id=organisation_id,
        name=command.name,
        kind=command.kind,
        contact=command.contact,
        area_codes=validate_area_codes(command.area_codes),
        status=OrganisationStatus.ACTIVE,
        version=1,
        created_at=now,
        updated_at=now,
    )
    return Change(
        after=organisation,
        events=(OrganisationRegistered(organisation=public(organisation)), contact_recorded(organisation)),
    )


def revise(current: Organisation, changes: dict[str, Any], version: int) -> Change[Organisation] | None:
    """Apply changed facts or contact; None when nothing differs."""
    after = current.model_copy(update={**changes, "version": version})
    fields = changed_fields(current, after, changes)
    if not fields:
        return None
    events: list[Event] = []
    if set(PUBLIC_FIELDS) & set(fields):
        events.append(OrganisationUpdated(organisation=public(after)))
    if "contact" in fields:
        events.append(contact_recorded(after))
    return Change(after=after, fields=fields, events=tuple(events))


def change_status(
    current: Organisation,
    target: OrganisationStatus,
    reason: str,
    author: Author,
    now: datetime,
    version: int,
) -> Change[Organisation]:
    """Suspend or reinstate: the new status, its history entry and event."""
    if current.status is target:
        raise OrganisationStatusUnchanged(target.value)
    after = current.model_copy(update={"status": target, "version": version})
    event_type = OrganisationSuspended if target is OrganisationStatus.SUSPENDED else OrganisationReinstated
    entry = StatusChange(at=now, actor=author.subject, status=target, reason=reason)
    return Change(
        after=after,
        fields=("status",),
        appended=(("status_history", entry),),
        events=(event_type(organisation=public(after)),),
    )
