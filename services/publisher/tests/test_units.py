"""Pure logic: feed cursors, area attribution, open-data headers, and the SSE fan-out under a slow client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ksbb_publisher.app.stream import FeedBroadcaster
from ksbb_publisher.domain.areas import area_fields
from ksbb_publisher.domain.feed import donor_label, feed_cursor
from ksbb_publisher.domain.opendata import COLUMNS, csv_lines, header_rows
from ksbb_publisher.domain.views import progress_of
from ksbb_publisher.handlers import public_event_types

pytestmark = pytest.mark.unit


def test_feed_cursors_sort_by_event_time_then_id_across_time_zones() -> None:
    base = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    wib = base.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Jakarta"))
    cursors = [
        feed_cursor(base + timedelta(microseconds=1), "a"),
        feed_cursor(wib, "b"),
        feed_cursor(base, "a"),
        feed_cursor(base - timedelta(days=400), "z"),
    ]
    assert sorted(cursors) == [cursors[3], cursors[2], cursors[1], cursors[0]]
    assert feed_cursor(wib, "b") == feed_cursor(base, "b")


def test_area_fields_name_every_level_and_tolerate_unknown_codes() -> None:
    gambir = area_fields("31.71.01.1001")
    assert (gambir["kota_name"], gambir["kecamatan_name"], gambir["kelurahan_name"]) == (
        "Jakarta Pusat",
        "Gambir",
        "Gambir",
    )
    unknown = area_fields("31.71.99.9999")
    assert unknown["kecamatan_code"] == "31.71.99" and unknown["kelurahan_name"] is None


def test_open_data_tables_have_one_hashtag_per_column_and_quote_csv() -> None:
    for dataset, columns in COLUMNS.items():
        headers, tags = header_rows(dataset)
        assert len(headers) == len(tags) == len(columns)
        assert all(tag.startswith("#") for tag in tags), dataset
        assert {"#adm1+code", "#adm2+code", "#adm3+code", "#adm4+code", "#org+name"} <= set(tags)
    assert csv_lines([["a,b", None, 3]]) == '"a,b",,3\r\n'


def test_progress_defaults_to_the_requested_quantity_before_any_ledger() -> None:
    assert progress_of({"quantity": 8})["remaining"] == 8
    assert (
        progress_of(
            {"quantity": 8, "progress": {"requested": 10, "committed": 10, "in_transit": 3, "delivered": 5}}
        )["percent_pledged"]
        == 100
    )


def test_progress_counts_in_transit_and_delivered_once_as_parts_of_committed() -> None:
    # The pledges service's rule: committed = live reservations + received; in transit and delivered are parts.
    ledger = {"requested": 10, "committed": 6, "in_transit": 2, "delivered": 3}
    progress = progress_of({"quantity": 10, "progress": ledger})
    assert progress["remaining"] == 4
    assert progress["percent_pledged"] == 60
    assert progress["percent_delivered"] == 30


def test_anonymous_label_and_no_confidential_event_types() -> None:
    assert donor_label(None) == "Kolaborator anonim" and donor_label(None, "en") == "Anonymous collaborator"
    types = public_event_types()
    assert types and not any(t.topic.confidential for t in types)
    assert not any("contact" in t.event_type for t in types)


async def test_a_slow_sse_client_is_dropped_without_blocking_the_others() -> None:
    async def render(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": e["cursor"], "seq": e["seq"], "kind": "pledged"} for e in entries]

    broadcaster = FeedBroadcaster(render, queue_size=3)
    slow, fast = broadcaster.subscribe(), broadcaster.subscribe()
    received: list[int] = []

    async def read_fast() -> None:
        while len(received) < 10:
            seq, _ = await fast.queue.get()
            received.append(seq)

    reader = asyncio.create_task(read_fast())
    for n in range(10):
        await broadcaster.announce([{"_id": f"e{n}", "cursor": f"c{n:02d}", "seq": n + 1}])
        await asyncio.sleep(0)  # let the fast reader run; the slow one never reads
    await asyncio.wait_for(reader, timeout=5)
    assert received == [n + 1 for n in range(10)]
    assert slow.dropped.is_set() and broadcaster.subscriber_count == 1 and broadcaster.dropped_total == 1
    repeat = {"_id": "e3", "cursor": "c03", "seq": 4}
    assert await broadcaster.announce([repeat]) == 0  # repeats are not re-sent


def test_feed_sentences_use_the_anonymous_label_of_the_language() -> None:
    from ksbb_publisher.domain.feed import describe

    entry = {
        "kind": "delivered",
        "donor_name": "Kolaborator anonim",
        "donor_named": False,
        "item": "sembako",
        "quantity": 10,
        "delivered_quantity": 8,
        "recipient_name": "RW 03 Gambir",
    }
    assert describe(entry) == "Kolaborator anonim telah menyalurkan 8 sembako untuk RW 03 Gambir"
    assert describe(entry, "en") == "Anonymous collaborator delivered 8 sembako for RW 03 Gambir"
    named = {**entry, "donor_name": "PT Sumber Berkah", "donor_named": True, "kind": "pledged"}
    assert describe(named, "en") == "PT Sumber Berkah pledged 10 sembako for RW 03 Gambir"
