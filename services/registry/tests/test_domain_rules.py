"""Unit tests of the registry's pure rules: lifecycle, validation, duplicates, suggestions, recurrence."""

from __future__ import annotations

from datetime import date

import pytest
from ksbb_contracts.vocab import Item, Priority, RecipientKind, RecipientStatus, Recurrence
from ksbb_registry.api.schemas import BeneficiaryCounts, ContactPerson
from ksbb_registry.domain import rules
from ksbb_registry.domain.rules import TRANSITIONS, Action, Actor, RuleViolation
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
def test_legal_transitions_reach_their_target(action: Action, source: S, target: S) -> None:
    assert rules.transition(action, source, Actor.ADMIN, "catatan") is target


def test_every_other_source_state_is_an_illegal_transition() -> None:
    for action, rule in TRANSITIONS.items():
        for status in set(S) - rule.sources:
            with pytest.raises(RuleViolation) as caught:
                rules.transition(action, status, Actor.ADMIN, "catatan")
            assert caught.value.status == 409, (action, status)
            assert caught.value.code == "illegal_transition"


def test_facilitators_may_not_reinstate_or_archive_and_strangers_nothing() -> None:
    for action in (Action.REINSTATE, Action.ARCHIVE):
        source = next(iter(TRANSITIONS[action].sources))
        with pytest.raises(RuleViolation) as caught:
            rules.transition(action, source, Actor.OWN_FACILITATOR, "alasan")
        assert caught.value.status == 403
    with pytest.raises(RuleViolation) as caught:
        rules.transition(Action.VERIFY, S.REGISTERED, None, "catatan")
    assert caught.value.status == 403
    assert rules.transition(Action.SUSPEND, S.ACTIVE, Actor.OWN_FACILITATOR, "laporan warga") is S.SUSPENDED


def test_verify_suspend_archive_need_a_reason() -> None:
    for action, source in (
        (Action.VERIFY, S.REGISTERED),
        (Action.SUSPEND, S.ACTIVE),
        (Action.ARCHIVE, S.ACTIVE),
    ):
        with pytest.raises(RuleViolation) as caught:
            rules.transition(action, source, Actor.ADMIN, "  ")
        assert (caught.value.status, caught.value.field) == (422, "reason")
    assert rules.transition(Action.ACTIVATE, S.VERIFIED, Actor.ADMIN, None) is S.ACTIVE


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
    assert rules.normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "+1 415 555 0100", "0812-abc", "00812345678"])
def test_foreign_or_malformed_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        rules.normalise_phone(raw)
    with pytest.raises(ValidationError) as caught:
        ContactPerson(name="X", phone=raw)
    assert caught.value.errors()[0]["loc"] == ("phone",)


def test_locations_are_checked_against_the_kemendagri_lineage() -> None:
    location = rules.validate_location("31.71.01.1001", kecamatan_code="31.71.01", kota_code="31.71")
    assert location == rules.Location("31.71.01.1001", "31.71.01", "31.71")
    with pytest.raises(RuleViolation) as caught:
        rules.validate_location("31.71.01.9999")
    assert (caught.value.status, caught.value.field) == (422, "kelurahan_code")
    with pytest.raises(RuleViolation) as caught:
        rules.validate_location("31.71.01.1001", kecamatan_code="31.72.01")
    assert caught.value.field == "kecamatan_code"
    with pytest.raises(RuleViolation) as caught:
        rules.validate_location("31.71.01.1001", kota_code="31.73")
    assert caught.value.field == "kota_code"


def test_coordinates_outside_jakarta_are_refused() -> None:
    rules.validate_coordinates(-6.2, 106.83)
    with pytest.raises(RuleViolation) as caught:
        rules.validate_coordinates(-7.8, 110.36)  # Yogyakarta
    assert caught.value.field == "coordinates"


def test_kind_rules() -> None:
    with pytest.raises(RuleViolation) as caught:
        rules.validate_kind(RecipientKind.LAINNYA, None, None)
    assert caught.value.field == "kind_description"
    with pytest.raises(RuleViolation) as caught:
        rules.validate_kind(RecipientKind.RW_RENTAN, None, None)
    assert caught.value.field == "rw"
    rules.validate_kind(RecipientKind.LAINNYA, "Rumah singgah", None)


def test_duplicate_keys_ignore_case_punctuation_and_abbreviations() -> None:
    a = rules.identity_key("Panti Asuhan Al-Ikhlas", "Jl. Kenari No. 5")
    b = rules.identity_key("panti asuhan al ikhlas", "JALAN Kenari nomor 5")
    assert a == b
    assert a != rules.identity_key("Panti Asuhan Al-Ikhlas", "Jl. Kenari No. 7")
    assert rules.rw_key(RecipientKind.RW_RENTAN, "31.71.01.1001", 3) == "31.71.01.1001/3"
    assert rules.rw_key(RecipientKind.PESANTREN, "31.71.01.1001", 3) is None


def test_beneficiary_counts_must_be_consistent() -> None:
    with pytest.raises(ValidationError):
        BeneficiaryCounts(households=10, people=5)
    with pytest.raises(ValidationError):
        BeneficiaryCounts(households=1, people=4, elderly=5)
    with pytest.raises(ValidationError):
        BeneficiaryCounts(households=0, people=0)


def test_suggestions_follow_the_ksbb_reference_packages() -> None:
    rw = rules.suggest_needs(RecipientKind.RW_RENTAN, 50, 0, 10, 5, 0)
    sembako = next(s for s in rw if s.item is Item.SEMBAKO)
    assert (sembako.quantity, sembako.estimated_value_idr, sembako.recurrence) == (
        50,
        10_000_000,
        Recurrence.WEEKLY,
    )
    eid = next(s for s in rw if s.item is Item.EID_PACKAGE)
    assert eid.estimated_value_idr == 50 * 85_000
    panti = rules.suggest_needs(RecipientKind.PANTI_ASUHAN, 0, 30, 25, 0, 0)
    meals = next(s for s in panti if s.item is Item.READY_MEALS)
    assert (meals.quantity, meals.estimated_value_idr, meals.priority) == (210, 210 * 45_000, Priority.HIGH)
    # 30 people = 8 households (1 KK = 4 people, rounded up) for the Eid package.
    assert next(s for s in panti if s.item is Item.EID_PACKAGE).quantity == 8


def test_recurrence_periods() -> None:
    start = date(2026, 1, 5)
    assert rules.following_period(start, Recurrence.WEEKLY) == date(2026, 1, 12)
    assert rules.next_period_start(start, Recurrence.WEEKLY, date(2026, 1, 11)) is None
    assert rules.next_period_start(start, Recurrence.WEEKLY, date(2026, 1, 12)) == date(2026, 1, 12)
    # Several missed periods open only the current one.
    assert rules.next_period_start(start, Recurrence.WEEKLY, date(2026, 1, 27)) == date(2026, 1, 26)
    assert rules.following_period(date(2026, 1, 31), Recurrence.MONTHLY) == date(2026, 2, 28)
    assert rules.next_period_start(start, Recurrence.NONE, date(2027, 1, 1)) is None


def test_quantity_may_not_drop_below_committed_and_fulfilment_needs_full_delivery() -> None:
    rules.check_quantity_change(5, 5)
    with pytest.raises(RuleViolation) as caught:
        rules.check_quantity_change(4, 5)
    assert caught.value.status == 409
    assert not rules.is_fulfilled(10, 9)
    assert rules.is_fulfilled(10, 10)
    assert not rules.is_fulfilled(0, 0)
