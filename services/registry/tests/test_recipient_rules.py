"""Unit tests of recipient registration and changes: what is written, which events result, what is refused."""

from __future__ import annotations

import pytest
from ksbb_contracts.events.registry import (
    Beneficiaries,
    RecipientContactRecorded,
    RecipientRegistered,
    RecipientUpdated,
)
from ksbb_contracts.vocab import RecipientKind, RecipientStatus
from ksbb_registry.domain import recipients
from ksbb_registry.domain.errors import ConcurrentChange, OutsideJakarta, RecipientIsArchived, RwRequired
from ksbb_registry.domain.recipients import (
    AuditEntry,
    ContactPerson,
    Coordinates,
    NewRecipient,
    RecipientPatch,
)

from .builders import ADMIN, NOW, STAFF, recipient

pytestmark = pytest.mark.unit


def registration(**overrides: object) -> NewRecipient:
    """A valid registration of a panti asuhan in Gambir."""
    fields: dict[str, object] = {
        "name": "Panti Asuhan Kasih Bunda",
        "kind": RecipientKind.PANTI_ASUHAN,
        "organisation_id": "org_1",
        "kelurahan_code": "31.71.01.1001",
        "street_address": "Jl. Kenari No. 5",
        "beneficiaries": Beneficiaries(households=0, people=30, children=25),
        "contact": ContactPerson(name="Ibu Sari", phone="+6281234567890"),
        "notes": "pagar hijau",
    }
    fields.update(overrides)
    return NewRecipient.model_validate(fields)


def test_a_registration_is_registered_with_its_keys_audit_and_two_events() -> None:
    command = registration()
    location = recipients.validate_new(command)
    keys = recipients.keys_of(command, location)
    change = recipients.register("rcp_9", command, location, keys, STAFF, NOW, overridden=[])
    created = change.after
    assert (created.status, created.version, created.kota_code) == (RecipientStatus.REGISTERED, 1, "31.71")
    assert (created.identity_key, created.rw_key) == keys and keys[1] is None
    assert [(a.action, a.to_status, a.actor) for a in created.audit] == [
        ("register", RecipientStatus.REGISTERED, "staff-1")
    ]
    registered, contact = change.events
    assert isinstance(registered, RecipientRegistered) and isinstance(contact, RecipientContactRecorded)
    assert (
        "Ibu Sari" not in registered.model_dump_json() and "pagar hijau" not in registered.model_dump_json()
    )
    assert (contact.contact_name, contact.street_address) == ("Ibu Sari", "Jl. Kenari No. 5")


def test_an_admin_override_is_audited_with_the_holders_it_overrode() -> None:
    command = registration(duplicate_override_reason="RW dimekarkan")
    location = recipients.validate_new(command)
    change = recipients.register(
        "rcp_9", command, location, recipients.keys_of(command, location), ADMIN, NOW, overridden=["rcp_1"]
    )
    override = change.after.audit[-1]
    assert (override.action, override.reason, override.document_refs) == (
        "duplicate_override",
        "RW dimekarkan",
        ["rcp_1"],
    )


def test_a_registration_outside_jakarta_or_an_rw_without_number_is_refused() -> None:
    with pytest.raises(OutsideJakarta):
        recipients.validate_new(registration(coordinates=Coordinates(lat=-7.8, lon=110.36)))
    with pytest.raises(RwRequired):
        recipients.validate_new(registration(kind=RecipientKind.RW_RENTAN))


def test_a_patch_keeps_only_the_fields_given_and_null_only_where_it_clears() -> None:
    patch = RecipientPatch.model_validate({"notes": None, "name": None, "rt": None, "rw": 7})
    assert patch.changes() == {"rw": 7, "rt": None, "notes": None}


def test_private_notes_change_without_a_public_event() -> None:
    current = recipient()
    change = recipients.revise(current, {"notes": "akses lewat gang"}, STAFF, NOW, current.version + 1)
    assert change is not None and change.fields == ("notes",) and change.events == ()
    [(_, entry)] = change.appended
    assert isinstance(entry, AuditEntry)
    assert entry.reason == "changed: notes"


def test_public_and_contact_changes_publish_their_events_with_the_next_version() -> None:
    current = recipient()
    contact = ContactPerson(name="Pak Budi", phone="+6281311112222")
    counts = Beneficiaries(households=41, people=164)
    change = recipients.revise(current, {"beneficiaries": counts, "contact": contact}, ADMIN, NOW, 4)
    assert change is not None
    updated, recorded = change.events
    assert isinstance(updated, RecipientUpdated) and updated.recipient.version == 4
    assert updated.recipient.beneficiaries.households == 41
    assert isinstance(recorded, RecipientContactRecorded) and recorded.contact_name == "Pak Budi"


def test_nothing_differs_nothing_is_written() -> None:
    current = recipient()
    assert recipients.revise(current, {"rw": current.rw, "notes": None}, ADMIN, NOW, 4) is None


def test_an_archived_recipient_does_not_change() -> None:
    with pytest.raises(RecipientIsArchived):
        recipients.revise(recipient(RecipientStatus.ARCHIVED), {"notes": "x"}, ADMIN, NOW, 4)


def test_a_change_decided_on_keys_that_changed_meanwhile_is_refused() -> None:
    current = recipient()
    decided_on = (current.identity_key, "31.71.01.1001/4")
    with pytest.raises(ConcurrentChange):
        recipients.revise(current, {"rw": 6}, ADMIN, NOW, 4, decided_on_keys=decided_on)
    still = (current.identity_key, current.rw_key)
    assert recipients.revise(current, {"rw": 6}, ADMIN, NOW, 4, decided_on_keys=still) is not None
