"""Unit tests of the registry's pure rules: lifecycle, validation, duplicates, suggestions, recurrence."""

from __future__ import annotations

from datetime import date

import pytest
from ksbb_contracts.vocab import Item, Priority, RecipientKind, RecipientStatus, Recurrence
from ksbb_registry.api.schemas import BeneficiaryCounts, ContactPerson
from ksbb_registry.domain import areas, catalogue, duplicates, lifecycle, needs, recipients, recurrence
from ksbb_registry.domain.errors import (
    AreaMismatch,
    BelowCommitted,
    DescriptionRequired,
    IllegalTransition,
    NotPermitted,
    OutsideJakarta,
    ReasonRequired,
    RwRequired,
    UnknownAreaCode,
)
from ksbb_registry.domain.lifecycle import TRANSITIONS, Action, Actor
from pydantic import ValidationError

pytestmark = pytest.mark.unit
S = RecipientStatus


@pytest.mark.parametrize(
    ("action", "source", "target"),
    [
        (Action.VERIFY, S.REGISTERED, S.VERIFIED),
        (Action.ACTIVATE, S.VERIFIED, S.ACTIVE),
        (Action.SUSPEND, S.ACTIVE, S.SUSPENDED),
        (Action.REINSTATE, S.SUSPENDED, S.ACTIVE),
        (Action.ARCHIVE, S.ACTIVE, S.ARCHIVED),
        (Action.ARCHIVE, S.REGISTERED, S.ARCHIVED),
    ],
)
def test_legal_transitions_reach_their_target(
    action: Action, source: RecipientStatus, target: RecipientStatus
) -> None:
    assert lifecycle.transition(action, source, Actor.ADMIN, "catatan") is target


def test_every_other_source_state_is_an_illegal_transition() -> None:
    for action, rule in TRANSITIONS.items():
        for status in set(S) - rule.sources:
            with pytest.raises(IllegalTransition) as caught:
                lifecycle.transition(action, status, Actor.ADMIN, "catatan")
            assert (caught.value.action, caught.value.current) == (action.value, status.value)
            assert caught.value.field == "status"


def test_facilitators_may_not_reinstate_or_archive_and_strangers_nothing() -> None:
    for action in (Action.REINSTATE, Action.ARCHIVE):
        source = next(iter(TRANSITIONS[action].sources))
        with pytest.raises(NotPermitted):
            lifecycle.transition(action, source, Actor.OWN_FACILITATOR, "alasan")
    with pytest.raises(NotPermitted):
        lifecycle.transition(Action.VERIFY, S.REGISTERED, None, "catatan")
    assert (
        lifecycle.transition(Action.SUSPEND, S.ACTIVE, Actor.OWN_FACILITATOR, "laporan warga") is S.SUSPENDED
    )


def test_verify_suspend_archive_need_a_reason() -> None:
    for action, source in (
        (Action.VERIFY, S.REGISTERED),
        (Action.SUSPEND, S.ACTIVE),
        (Action.ARCHIVE, S.ACTIVE),
    ):
        with pytest.raises(ReasonRequired) as caught:
            lifecycle.transition(action, source, Actor.ADMIN, "  ")
        assert caught.value.field == "reason"
    assert lifecycle.transition(Action.ACTIVATE, S.VERIFIED, Actor.ADMIN, None) is S.ACTIVE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 789", "+628123456789"),
        ("021 5551234", "+62215551234"),
        ("6281311112222", "+6281311112222"),
    ],
)
def test_indonesian_phone_numbers_are_normalised(raw: str, expected: str) -> None:
    assert recipients.normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "+1 415 555 0100", "0812-abc", "00812345678"])
def test_foreign_or_malformed_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        recipients.normalise_phone(raw)
    with pytest.raises(ValidationError) as caught:
        ContactPerson(name="X", phone=raw)
    assert caught.value.errors()[0]["loc"] == ("phone",)


def test_locations_are_checked_against_the_kemendagri_lineage() -> None:
    location = areas.validate_location("31.71.01.1001", kecamatan_code="31.71.01", kota_code="31.71")
    assert location == areas.Location("31.71.01.1001", "31.71.01", "31.71")
    with pytest.raises(UnknownAreaCode) as unknown:
        areas.validate_location("31.71.01.9999")
    assert unknown.value.field == "kelurahan_code"
    with pytest.raises(AreaMismatch) as caught:
        areas.validate_location("31.71.01.1001", kecamatan_code="31.72.01")
    assert caught.value.field == "kecamatan_code"
    with pytest.raises(AreaMismatch) as caught:
        areas.validate_location("31.71.01.1001", kota_code="31.73")
    assert caught.value.field == "kota_code"


def test_coordinates_outside_jakarta_are_refused() -> None:
    areas.validate_coordinates(-6.2, 106.83)
    with pytest.raises(OutsideJakarta) as caught:
        areas.validate_coordinates(-7.8, 110.36)  # Yogyakarta
    assert caught.value.field == "coordinates"


def test_kind_rules() -> None:
    with pytest.raises(DescriptionRequired) as caught:
        recipients.validate_kind(RecipientKind.LAINNYA, None, None)
    assert caught.value.field == "kind_description"
    with pytest.raises(RwRequired) as missing_rw:
        recipients.validate_kind(RecipientKind.RW_RENTAN, None, None)
    assert missing_rw.value.field == "rw"
    recipients.validate_kind(RecipientKind.LAINNYA, "Rumah singgah", None)


def test_duplicate_keys_ignore_case_punctuation_and_abbreviations() -> None:
    a = duplicates.identity_key("Panti Asuhan Al-Ikhlas", "Jl. Kenari No. 5")
    b = duplicates.identity_key("panti asuhan al ikhlas", "JALAN Kenari nomor 5")
    assert a == b
    assert a != duplicates.identity_key("Panti Asuhan Al-Ikhlas", "Jl. Kenari No. 7")
    assert duplicates.rw_key(RecipientKind.RW_RENTAN, "31.71.01.1001", 3) == "31.71.01.1001/3"
    assert duplicates.rw_key(RecipientKind.PESANTREN, "31.71.01.1001", 3) is None


def test_beneficiary_counts_must_be_consistent() -> None:
    with pytest.raises(ValidationError):
        BeneficiaryCounts(households=10, people=5)
    with pytest.raises(ValidationError):
        BeneficiaryCounts(households=1, people=4, elderly=5)
    with pytest.raises(ValidationError):
        BeneficiaryCounts(households=0, people=0)


def test_suggestions_follow_the_ksbb_reference_packages() -> None:
    rw = catalogue.suggest_needs(RecipientKind.RW_RENTAN, 50, 0, 10, 5, 0)
    sembako = next(s for s in rw if s.item is Item.SEMBAKO)
    assert (sembako.quantity, sembako.estimated_value_idr, sembako.recurrence) == (
        50,
        10_000_000,
        Recurrence.WEEKLY,
    )
    eid = next(s for s in rw if s.item is Item.EID_PACKAGE)
    assert eid.estimated_value_idr == 50 * 85_000
    panti = catalogue.suggest_needs(RecipientKind.PANTI_ASUHAN, 0, 30, 25, 0, 0)
    meals = next(s for s in panti if s.item is Item.READY_MEALS)
    assert (meals.quantity, meals.estimated_value_idr, meals.priority) == (210, 210 * 45_000, Priority.HIGH)
    # 30 people = 8 households (1 KK = 4 people, rounded up) for the Eid package.
    assert next(s for s in panti if s.item is Item.EID_PACKAGE).quantity == 8


def test_recurrence_periods() -> None:
    start = date(2026, 1, 5)
    assert recurrence.following_period(start, Recurrence.WEEKLY) == date(2026, 1, 12)
    assert recurrence.next_period_start(start, Recurrence.WEEKLY, date(2026, 1, 11)) is None
    assert recurrence.next_period_start(start, Recurrence.WEEKLY, date(2026, 1, 12)) == date(2026, 1, 12)
    # Several missed periods open only the current one.
    assert recurrence.next_period_start(start, Recurrence.WEEKLY, date(2026, 1, 27)) == date(2026, 1, 26)
    assert recurrence.following_period(date(2026, 1, 31), Recurrence.MONTHLY) == date(2026, 2, 28)
    assert recurrence.next_period_start(start, Recurrence.NONE, date(2027, 1, 1)) is None


def test_quantity_may_not_drop_below_committed_and_fulfilment_needs_full_delivery() -> None:
    needs.check_quantity_change(5, 5)
    with pytest.raises(BelowCommitted) as caught:
        needs.check_quantity_change(4, 5)
    assert (caught.value.committed, caught.value.field) == (5, "quantity")
    assert not needs.is_fulfilled(10, 9)
    assert needs.is_fulfilled(10, 10)
    assert not needs.is_fulfilled(0, 0)
