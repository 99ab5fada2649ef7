"""Plain-value builders of registry aggregates for unit tests (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ksbb_contracts.events.registry import Beneficiaries
from ksbb_contracts.vocab import Item, NeedStatus, Priority, RecipientKind, RecipientStatus, Recurrence
from ksbb_registry.domain import duplicates
from ksbb_registry.domain.change import Author
from ksbb_registry.domain.needs import Ledger, Need
from ksbb_registry.domain.recipients import ContactPerson, Recipient

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ADMIN = Author(subject="admin-1", role="admin")
STAFF = Author(subject="staff-1", role="facilitator")


def recipient(status: RecipientStatus = RecipientStatus.ACTIVE, **overrides: Any) -> Recipient:
    """An RW-level recipient in Gambir with a contact person."""
    fields: dict[str, Any] = {
        "recipient_id": "rcp_1",
        "name": "RW 05 Gambir",
        "kind": RecipientKind.RW_RENTAN,
        "organisation_id": "org_1",
        "kelurahan_code": "31.71.01.1001",
        "kecamatan_code": "31.71.01",
        "kota_code": "31.71",
        "rw": 5,
        "street_address": "Jl. Kenari No. 5",
        "beneficiaries": Beneficiaries(households=40, people=160, children=50, elderly=10, disabled=2),
        "contact": ContactPerson(name="Ibu Sari", phone="+6281234567890"),
        "status": status,
        "version": 3,
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(overrides)
    fields.setdefault("identity_key", duplicates.identity_key(fields["name"], fields["street_address"]))
    fields.setdefault("rw_key", duplicates.rw_key(fields["kind"], fields["kelurahan_code"], fields["rw"]))
    return Recipient(**fields)


def need(status: NeedStatus = NeedStatus.OPEN, **overrides: Any) -> Need:
    """An open one-off need of `recipient()` for 10 sembako packages."""
    fields: dict[str, Any] = {
        "need_id": "need_1",
        "recipient_id": "rcp_1",
        "organisation_id": "org_1",
        "kelurahan_code": "31.71.01.1001",
        "kecamatan_code": "31.71.01",
        "kota_code": "31.71",
        "rw": 5,
        "item": Item.SEMBAKO,
        "quantity": 10,
        "unit": "paket",
        "priority": Priority.HIGH,
        "needed_by": date(2026, 3, 20),
        "recurrence": Recurrence.NONE,
        "status": status,
        "ledger": Ledger(requested=10),
        "version": 2,
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(overrides)
    return Need(**fields)
