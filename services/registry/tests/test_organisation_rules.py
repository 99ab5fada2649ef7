"""Unit tests of facilitator organisations: registration, changes and status, with their events."""

from __future__ import annotations

import pytest
from ksbb_contracts.events.registry import (
    OrganisationContactRecorded,
    OrganisationRegistered,
    OrganisationReinstated,
    OrganisationSuspended,
    OrganisationUpdated,
)
from ksbb_contracts.vocab import OrganisationKind, OrganisationStatus
from ksbb_registry.domain import organisations
from ksbb_registry.domain.errors import OrganisationStatusUnchanged, UnknownAreaCode
from ksbb_registry.domain.organisations import (
    NewOrganisation,
    OrganisationContact,
    OrganisationPatch,
    StatusChange,
)

from .builders import ADMIN, NOW

pytestmark = pytest.mark.unit
CONTACT = OrganisationContact(name="Sekretariat", email="kontak@lembaga.example")


def registered() -> organisations.Organisation:
    """A freshly registered organisation covering Jakarta Pusat."""
    command = NewOrganisation(
        name="Lembaga Uji", kind=OrganisationKind.NGO, contact=CONTACT, area_codes=["31.71", "31.71"]
    )
    return organisations.register("org_1", command, NOW).after


def test_registration_is_active_with_sorted_unique_areas_and_keeps_the_contact_confidential() -> None:
    command = NewOrganisation(
        name="Lembaga Uji", kind=OrganisationKind.NGO, contact=CONTACT, area_codes=["31.72", "31.71", "31.72"]
    )
    change = organisations.register("org_1", command, NOW)
    assert (change.after.status, change.after.area_codes, change.after.version) == (
        OrganisationStatus.ACTIVE,
        ["31.71", "31.72"],
        1,
    )
    public, contact = change.events
    assert (
        isinstance(public, OrganisationRegistered)
        and "kontak@lembaga.example" not in public.model_dump_json()
    )
    assert isinstance(contact, OrganisationContactRecorded) and contact.email == "kontak@lembaga.example"


def test_unknown_area_codes_name_their_position() -> None:
    with pytest.raises(UnknownAreaCode) as refused:
        OrganisationPatch(area_codes=["31.71", "99"]).changes()
    assert refused.value.field == "area_codes.1"


def test_changes_publish_public_facts_and_contact_separately() -> None:
    current = registered()
    renamed = organisations.revise(current, OrganisationPatch(name="Lembaga Baru").changes(), 2)
    assert renamed is not None and [type(e) for e in renamed.events] == [OrganisationUpdated]
    assert renamed.events[0].organisation.version == 2
    recontacted = organisations.revise(
        current, {"contact": CONTACT.model_copy(update={"phone": "+62215551234"})}, 2
    )
    assert recontacted is not None and [type(e) for e in recontacted.events] == [OrganisationContactRecorded]
    assert (
        organisations.revise(current, OrganisationPatch(name="Lembaga Uji", kind=None).changes(), 2) is None
    )


def test_suspend_and_reinstate_record_history_and_refuse_the_status_it_already_has() -> None:
    current = registered()
    suspended = organisations.change_status(current, OrganisationStatus.SUSPENDED, "audit", ADMIN, NOW, 2)
    assert [type(e) for e in suspended.events] == [OrganisationSuspended]
    [(history, entry)] = suspended.appended
    assert isinstance(entry, StatusChange)
    assert history == "status_history" and (entry.actor, entry.reason) == ("admin-1", "audit")
    with pytest.raises(OrganisationStatusUnchanged):
        organisations.change_status(current, OrganisationStatus.ACTIVE, "x", ADMIN, NOW, 2)
    back = organisations.change_status(suspended.after, OrganisationStatus.ACTIVE, "selesai", ADMIN, NOW, 3)
    assert [type(e) for e in back.events] == [OrganisationReinstated]
