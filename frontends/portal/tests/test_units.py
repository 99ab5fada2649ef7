"""Pure rules of the portal: Indonesian formatting, both languages complete, API problems next to fields,
progress arithmetic, duplicate hints, safe return addresses."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_portal import formatting, i18n
from ksbb_portal.api import ApiProblem
from ksbb_portal.web.common import progress_of
from ksbb_portal.web.context import safe_return_to
from ksbb_portal.web.facilitator import duplicate_candidates
from ksbb_portal.web.forms import problems_of

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ksbb_portal"


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (999, "999"), (1000, "1.000"), (45000, "45.000"), (1234567, "1.234.567"), (-2500, "-2.500"),
    (None, "–"), ("12", "–"),
])
def test_numbers_are_grouped_with_dots(value: object, text: str) -> None:
    assert formatting.number(value) == text


def test_decimals_follow_a_comma_and_rupiah_has_no_space() -> None:
    assert formatting.number(12.5, 1) == "12,5"
    assert formatting.number(1234.56, 2) == "1.234,56"
    assert formatting.rupiah(45000) == "Rp45.000"
    assert formatting.rupiah(200000.4) == "Rp200.000"


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_grouping_keeps_every_digit(value: int) -> None:
    text = formatting.number(value)
    assert int(text.replace(".", "")) == value
    assert all(len(group) == 3 for group in text.lstrip("-").split(".")[1:])


def test_times_are_shown_on_jakartas_clock() -> None:
    late_utc = datetime(2026, 5, 12, 20, 5, tzinfo=UTC)  # already 13 May in Jakarta (UTC+7)
    assert formatting.date_time(late_utc, "id") == "13 Mei 2026 03.05 WIB"
    assert formatting.date_time(late_utc, "en") == "13 May 2026, 03:05 WIB"
    assert formatting.long_date("2026-08-17", "id") == "17 Agustus 2026"
    assert formatting.long_date(date(2026, 8, 17), "en") == "17 August 2026"
    assert formatting.iso_date(late_utc) == "2026-05-13"
    assert formatting.date_time("2026-05-12T20:05:00Z", "id").startswith("13 Mei")


def _keys_used() -> set[str]:
    found: set[str] = set()
    for template in (PACKAGE / "templates").glob("*.html"):
        found |= set(re.findall(r"""_\(\s*["']([a-z0-9_]+)["']""", template.read_text()))
    for module in PACKAGE.rglob("*.py"):
        text = module.read_text()
        found |= set(re.findall(r"""ctx\._\(\s*["']([a-z0-9_]+)["']""", text))
        found |= set(re.findall(r"""flash\(\s*["'][a-z]+["'],\s*["']([a-z0-9_]+)["']""", text))
        found |= set(re.findall(r"""(?:\bRefused|error_page)\([^)]*?["']([a-z0-9_]+)["']""", text))
    return found


def test_every_text_the_pages_use_exists_in_both_languages() -> None:
    used = _keys_used()
    assert len(used) > 150
    missing = sorted(key for key in used if key not in i18n.MESSAGES and not key.startswith("role_"))
    assert not missing, missing
    for key, (indonesian, english) in i18n.MESSAGES.items():
        assert indonesian.strip() and english.strip(), key
        assert set(re.findall(r"{(\w+)}", indonesian)) == set(re.findall(r"{(\w+)}", english)), key
    for group in i18n.LABELS.values():
        for code, (indonesian, english) in group.items():
            assert indonesian and english, code


def test_api_problems_land_next_to_their_fields_in_the_persons_language() -> None:
    problem = ApiProblem(422, "validation_error", "Input should be greater than 0", field="quantity",
                         details={"errors": [{"field": "quantity", "message": "Input should be greater than 0"},
                                             {"field": "contact.phone", "message": "value is not a valid phone"}]})
    found = problems_of(problem, "id", {"quantity"})
    assert found.fields == {"quantity": "Harus lebih dari 0."}
    assert found.general == ["Telepon: Nomor telepon tidak valid."]
    english = problems_of(problem, "en", {"quantity", "contact.phone"})
    assert english.fields == {"quantity": "Input should be greater than 0",
                              "contact.phone": "value is not a valid phone"}


def test_rule_codes_are_translated_with_their_details() -> None:
    over = ApiProblem(409, "over_pledged", "only 5 left", field="quantity", details={"available": 5000})
    expected = {"quantity": "Jumlah melebihi sisa kebutuhan (tersisa 5.000)."}
    assert problems_of(over, "id", {"quantity"}).fields == expected
    closed = ApiProblem(409, "need_not_open", "need is fulfilled")
    assert problems_of(closed, "en", set()).general == ["This need is no longer open."]
    unknown = ApiProblem(409, "something_new", "a new rule")
    assert problems_of(unknown, "en", set()).general == ["a new rule"]
    assert "a new rule" in problems_of(unknown, "id", set()).general[0]
    missing = ApiProblem(404, "recipient_not_found", "nope")
    assert problems_of(missing, "id", set()).general == ["Data tidak ditemukan."]


def test_progress_counts_committed_as_including_in_transit_and_delivered() -> None:
    ledger = {"requested": 40, "committed": 30, "in_transit": 10, "delivered": 12}
    bar = progress_of({"quantity": 40, "progress": ledger})
    assert (bar.delivered, bar.pledged, bar.remaining) == (12, 18, 10)
    assert (bar.delivered_percent, bar.pledged_percent) == (30, 45)
    assert progress_of({"quantity": 10, "ledger": {"requested": 10, "committed": 0, "delivered": 0}}).remaining == 10
    full = progress_of({"requested": 5, "committed": 9, "delivered": 9})
    assert (full.remaining, full.delivered_percent, full.pledged_percent) == (0, 100, 0)


@pytest.mark.parametrize(("asked", "goes_to"), [
    ("/portal/my/pledges", "/portal/my/pledges"),
    ("/portal/needs?kota=31.71", "/portal/needs?kota=31.71"),
    ("https://evil.example/portal/", "/portal/"),
    ("//evil.example/portal/", "/portal/"),
    ("/portal//evil.example", "/portal/"),
    ("/v1/pledges", "/portal/"),
    ("/portal\\evil", "/portal/"),
    (None, "/portal/"),
])
def test_return_addresses_stay_inside_the_portal(asked: str | None, goes_to: str) -> None:
    assert safe_return_to(asked, "/portal") == goes_to


def test_near_duplicates_in_the_same_kelurahan_are_pointed_out() -> None:
    new = {"recipient_id": "rcp_new", "name": "Panti Asuhan Kasih Bunda", "kind": "panti_asuhan", "rw": None,
           "status": "registered"}
    rw = {"recipient_id": "rcp_rw", "name": "RW 07 Gambir", "kind": "rw_rentan", "rw": 7, "status": "registered"}
    neighbours = [
        {"recipient_id": "rcp_1", "name": "Yayasan Panti Asuhan Kasih Bunda Sejati", "kind": "panti_asuhan",
         "rw": None, "status": "active"},
        {"recipient_id": "rcp_2", "name": "Panti Asuhan Harapan", "kind": "panti_asuhan", "rw": None,
         "status": "active"},
        {"recipient_id": "rcp_3", "name": "RW 7 Kelurahan Gambir", "kind": "rw_rentan", "rw": 7, "status": "active"},
        {"recipient_id": "rcp_4", "name": "Kasih Bunda", "kind": "panti_asuhan", "rw": None, "status": "archived"},
        new, rw,
    ]
    assert [d["recipient_id"] for d in duplicate_candidates(new, neighbours)] == ["rcp_1"]
    assert [d["recipient_id"] for d in duplicate_candidates(rw, neighbours)] == ["rcp_3"]
