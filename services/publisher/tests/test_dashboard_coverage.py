"""The public page's area lists show coverage (households reached ÷ targeted, packages delivered) with a legend,
gaps first, in any of four orders."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from ksbb_publisher.api.pages import ENV, ITEM_LABELS, KIND_LABELS, TEXT, coverage_rows
from ksbb_publisher.domain.feed import VERBS
from starlette.requests import Request

pytestmark = pytest.mark.unit


def row(code: str, name: str, targeted: int, reached: int, packages: int) -> dict[str, Any]:
    """One area row as the statistics endpoint gives it."""
    return {"code": code, "name": name, "recipients": 3, "households_targeted": targeted,
            "households_reached": reached, "packages_delivered": packages, "donors": 1}


KEMAYORAN = row("31.71.03", "Kemayoran", 900, 0, 0)
GAMBIR = row("31.71.01", "Gambir", 100, 100, 120)
TANAH_ABANG = row("31.71.02", "Tanah Abang", 400, 100, 30)
PANTI_ONLY = row("31.71.04", "Senen", 0, 0, 12)
ROWS = [GAMBIR, PANTI_ONLY, TANAH_ABANG, KEMAYORAN]


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in rows]


def test_coverage_is_reached_over_targeted_and_gaps_come_first() -> None:
    ordered = coverage_rows(ROWS, None)
    assert names(ordered) == ["Kemayoran", "Tanah Abang", "Gambir", "Senen"]
    assert [r["coverage"] for r in ordered] == [0, 25, 100, None]


def test_every_order_is_available_and_unknown_orders_fall_back_to_gaps_first() -> None:
    assert names(coverage_rows(ROWS, "name")) == ["Gambir", "Kemayoran", "Senen", "Tanah Abang"]
    assert names(coverage_rows(ROWS, "targeted"))[0] == "Kemayoran"
    assert names(coverage_rows(ROWS, "packages"))[0] == "Gambir"
    assert names(coverage_rows(ROWS, "nonsense")) == names(coverage_rows(ROWS, "coverage"))


def test_a_tie_in_coverage_puts_the_larger_gap_first() -> None:
    small, large = row("31.72.01", "Penjaringan", 50, 0, 0), row("31.72.02", "Pademangan", 500, 0, 0)
    assert names(coverage_rows([small, large], None)) == ["Pademangan", "Penjaringan"]


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_page_draws_coverage_bars_with_a_legend_and_sort_links(lang: str) -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": b"lang=" + lang.encode(),
                       "headers": []})
    from ksbb_publisher.api.pages import sort_links

    stats = {"totals": row("31", "DKI", 1400, 200, 162), "by_kota": [row("31.71", "Jakarta Pusat", 1400, 200, 162)]}
    html = ENV.get_template("dashboard.html").render(
        t=TEXT[lang], lang=lang, kinds=KIND_LABELS[lang], verbs=VERBS, items=ITEM_LABELS[lang], stats=stats,
        kecamatan_rows=coverage_rows(ROWS, None), kota_rows=coverage_rows(stats["by_kota"], None), sort="coverage",
        sort_links=sort_links(request), recipients=[], needs_of={}, feed=[], gaps=[], gap_days=14, kotas=[],
        kecamatans=[], selected={"kota": None, "kecamatan": None, "kind": None, "open": False}, newest=0,
        attribution="ODbL",
    )
    assert TEXT[lang]["coverage_legend"] in html
    bars = re.findall(r'data-area="([0-9.]+)".*?style="width: (\d+)%"', html, re.S)
    assert bars[1:] == [("31.71.03", "0"), ("31.71.02", "25"), ("31.71.01", "100"), ("31.71.04", "0")]
    kemayoran = html[html.index('data-area="31.71.03"'):]
    assert "0/900" in kemayoran[:400], "Kemayoran: an empty bar beside nothing reached"
    assert "sort=name" in html and f"lang={lang}" in html.split("sort=name")[0][-40:]
    assert TEXT[lang]["no_households"] in html, "an area without targeted households says so instead of 0%"


@pytest.mark.parametrize(
    ("occurred_at", "shown"),
    [
        (datetime(2026, 1, 5, 20, 30, tzinfo=UTC), "06-01-2026 03:30 WIB"),  # past midnight in Jakarta
        (datetime(2026, 1, 5, 20, 30), "06-01-2026 03:30 WIB"),  # naive values from the read models are UTC
        (datetime(2026, 6, 1, 9, 5, tzinfo=timezone(timedelta(hours=2))), "01-06-2026 14:05 WIB"),
    ],
)
def test_feed_times_are_shown_on_jakarta_clock_with_the_instant_kept_in_the_markup(
    occurred_at: datetime, shown: str
) -> None:
    entry = {"id": "e1", "kind": "delivered", "occurred_at": occurred_at, "donor_name": "Kolaborator anonim",
             "donor_named": False, "delivered_quantity": 3, "quantity": 3, "item": "sembako",
             "recipient_name": "RW 03 Gambir", "recipient_id": "rcp_1"}
    html = ENV.get_template("dashboard.html").render(
        t=TEXT["id"], lang="id", kinds=KIND_LABELS["id"], verbs=VERBS, items=ITEM_LABELS["id"],
        stats={"totals": row("31", "DKI", 0, 0, 0), "by_kota": []}, kecamatan_rows=[], kota_rows=[],
        sort="coverage", sort_links={}, recipients=[], needs_of={}, feed=[entry], gaps=[], gap_days=14, kotas=[],
        kecamatans=[], selected={"kota": None, "kecamatan": None, "kind": None, "open": False}, newest=0,
        attribution="ODbL",
    )
    [(instant, text)] = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', html)
    assert text == shown
    as_utc = occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=UTC)
    assert datetime.fromisoformat(instant) == as_utc
