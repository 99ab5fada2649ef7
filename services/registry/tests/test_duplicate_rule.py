"""Unit tests of the duplicate-recipient rule: which units count as the same, and which keys a change claims."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts.vocab import RecipientKind
from ksbb_registry.domain import duplicates, recipients
from ksbb_registry.domain.recipients import RecipientPatch

from .builders import recipient

pytestmark = pytest.mark.unit

words = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8), min_size=1, max_size=5
)


@given(name=words, street=words, number=st.integers(min_value=1, max_value=999))
def test_case_spacing_and_punctuation_do_not_make_a_different_unit(
    name: list[str], street: list[str], number: int
) -> None:
    plain = duplicates.identity_key(" ".join(name), f"jalan {' '.join(street)} nomor {number}")
    shouted = duplicates.identity_key(
        "  ".join(w.upper() for w in name), f"JL. {'  '.join(street).upper()} NO. {number}"
    )
    punctuated = duplicates.identity_key("-".join(name) + ".", f"Jln {', '.join(street)} No.{number}")
    assert plain == shouted == punctuated


@given(name=words, street=words, number=st.integers(min_value=1, max_value=998))
def test_another_house_number_is_another_unit(name: list[str], street: list[str], number: int) -> None:
    here = duplicates.identity_key(" ".join(name), f"Jl. {' '.join(street)} No. {number}")
    next_door = duplicates.identity_key(" ".join(name), f"Jl. {' '.join(street)} No. {number + 1}")
    assert here != next_door


def test_abbreviations_and_accents_are_normalised() -> None:
    assert (
        duplicates.normalise_text("Yys. Ponpes Al-Ikhlās, Gg. Melati")
        == "yayasan pondok pesantren al ikhlas gang melati"
    )
    assert duplicates.identity_key("PP Darul Ulum", "Kel. Gambir") == duplicates.identity_key(
        "Pondok Pesantren Darul Ulum", "kelurahan gambir"
    )


@pytest.mark.parametrize("kind", [k for k in RecipientKind if k is not RecipientKind.RW_RENTAN])
def test_only_rw_level_units_have_an_rw_key(kind: RecipientKind) -> None:
    assert duplicates.rw_key(kind, "31.71.01.1001", 5) is None
    assert duplicates.rw_key(RecipientKind.RW_RENTAN, "31.71.01.1001", 5) == "31.71.01.1001/5"
    assert duplicates.rw_key(RecipientKind.RW_RENTAN, "31.71.01.1001", None) is None


def test_claim_keys_name_first_then_rw_and_each_reports_its_field() -> None:
    keys = duplicates.claim_keys("rw 05 gambir|jalan kenari nomor 5", "31.71.01.1001/5")
    assert keys == ["name:rw 05 gambir|jalan kenari nomor 5", "rw:31.71.01.1001/5"]
    assert [duplicates.claim_field(k) for k in keys] == ["name", "rw"]
    assert duplicates.claim_keys("x|y", None) == ["name:x|y"]
    assert duplicates.claim_keys(None, None) == []


keys = st.lists(st.sampled_from([f"k{i}" for i in range(8)]), unique=True, max_size=4)


@given(old=keys, new=keys)
def test_a_key_change_claims_exactly_the_new_keys_and_releases_exactly_the_old_ones(
    old: list[str], new: list[str]
) -> None:
    to_claim, to_release = duplicates.key_moves(old, new)
    assert set(to_claim) == set(new) - set(old)
    assert set(to_release) == set(old) - set(new)
    assert (set(old) - set(to_release)) | set(to_claim) == set(new)
    assert to_claim == [k for k in new if k in to_claim]  # claimed in the fixed order


def test_changing_the_rw_moves_only_the_rw_key() -> None:
    current = recipient()
    changes = recipients.complete_changes(current, RecipientPatch(rw=6).changes())
    assert changes["rw_key"] == "31.71.01.1001/6" and changes["identity_key"] == current.identity_key
    to_claim, to_release = duplicates.key_moves(
        current.claim_keys, duplicates.claim_keys(changes["identity_key"], changes["rw_key"])
    )
    assert (to_claim, to_release) == (["rw:31.71.01.1001/6"], ["rw:31.71.01.1001/5"])


def test_changes_that_do_not_touch_name_address_or_place_keep_the_keys() -> None:
    changes = recipients.complete_changes(recipient(), RecipientPatch(notes="akses lewat gang").changes())
    assert "identity_key" not in changes and "rw_key" not in changes


def test_moving_to_another_kelurahan_takes_its_kecamatan_kota_and_rw_key() -> None:
    changes = recipients.complete_changes(
        recipient(), RecipientPatch(kelurahan_code="31.75.01.1001").changes()
    )
    assert (changes["kecamatan_code"], changes["kota_code"]) == ("31.75.01", "31.75")
    assert changes["rw_key"] == "31.75.01.1001/5"
