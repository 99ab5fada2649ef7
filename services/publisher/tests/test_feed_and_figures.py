"""Feed entries, public views, coverage gaps and statistics as plain functions (no Kafka, no MongoDB)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ksbb_contracts.areas import areas
from ksbb_contracts.events import PledgeExpiring
from ksbb_publisher.api.errors import api_error
from ksbb_publisher.domain.areas import area_fields, checked_area_code
from ksbb_publisher.domain.coverage import coverage_report, gap_areas
from ksbb_publisher.domain.errors import (
    NoPublicNeed,
    NoPublicRecipient,
    NoSnapshotFile,
    RegistrationsNotPublished,
    UnknownAreaCode,
)
from ksbb_publisher.domain.feed import describe, feed_cursor, feed_entry, public_feed_entry
from ksbb_publisher.domain.opendata import delivery_record, recipient_record, row_values
from ksbb_publisher.domain.statistics import programme_statistics
from ksbb_publisher.domain.views import progress_of, public_recipient, require_public_status

from .support import NOW, minutes, pledge

pytestmark = pytest.mark.unit

GAMBIR = "31.71.01.1001"
KELURAHAN = [a.code for a in areas().level("kelurahan")]


def test_a_feed_entry_is_keyed_by_event_id_and_holds_ids_not_names() -> None:
    created = pledge("plg_1", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, quantity=10, at=NOW + minutes(1))
    entry = feed_entry(created, "evt_1", NOW)
    assert entry is not None
    assert (entry["_id"], entry["kind"], entry["event_type"]) == ("evt_1", "pledged", "ksbb.pledge.created.v1")
    assert entry["cursor"] == feed_cursor(NOW + minutes(1), "evt_1")
    assert entry["kelurahan_name"] == "Gambir" and entry["delivered_quantity"] is None
    assert "donor_name" not in entry and "seq" not in entry  # names resolved when shown; seq set when stored
    delivered = pledge("plg_1", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, version=3, delivered=8)
    assert (feed_entry(delivered, "evt_2", NOW) or {})["delivered_quantity"] == 8
    reminder = PledgeExpiring(pledge=created.pledge, occurred_at=NOW, expires_at=NOW + minutes(60))
    assert feed_entry(reminder, "evt_3", NOW) is None  # a reminder is not public activity


def test_the_public_feed_entry_names_a_donor_only_after_opting_in() -> None:
    created = pledge("plg_1", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, quantity=10)
    stored = {**(feed_entry(created, "evt_1", NOW) or {}), "seq": 7}
    anonymous = public_feed_entry(stored, None, "RW 03 Gambir")
    assert (anonymous["id"], anonymous["seq"]) == (stored["cursor"], 7)
    assert (anonymous["donor_name"], anonymous["donor_named"]) == ("Kolaborator anonim", False)
    assert anonymous["area"]["kota_name"] == "Jakarta Pusat" and "donor_id" not in anonymous
    named = public_feed_entry(stored, "PT Sumber Berkah", "RW 03 Gambir")
    assert describe(named, "en") == "PT Sumber Berkah pledged 10 sembako for RW 03 Gambir"


@given(
    requested=st.integers(min_value=0, max_value=10_000),
    committed=st.integers(min_value=0, max_value=10_000),
    in_transit=st.integers(min_value=0, max_value=10_000),
    delivered=st.integers(min_value=0, max_value=10_000),
)
def test_progress_never_goes_below_zero_or_above_a_hundred_percent(
    requested: int, committed: int, in_transit: int, delivered: int
) -> None:
    ledger = {"requested": requested, "committed": committed, "in_transit": in_transit, "delivered": delivered}
    progress = progress_of({"quantity": 5, "progress": ledger})
    assert progress["requested"] == (requested or 5)
    pledged = max(committed, in_transit + delivered)  # in transit and delivered are parts of committed
    assert progress["remaining"] == max(0, progress["requested"] - pledged)
    assert 0 <= progress["percent_delivered"] <= progress["percent_pledged"] <= 100
    if committed >= in_transit + delivered:  # a ledger as the pledges service writes it
        assert progress["remaining"] + committed >= progress["requested"]
        assert progress["remaining"] == max(0, progress["requested"] - committed)


def recipient_doc(i: int, kelurahan: str, kind: str, rw: int | None, households: int) -> dict[str, Any]:
    """A counted recipient document as the projection stores it."""
    return {
        "_id": f"rcp_{i:03d}",
        "name": f"Penerima {i}",
        "kind": kind,
        **area_fields(kelurahan),
        "rw": rw,
        "beneficiaries": {"households": households},
    }


#: Counted recipient documents in real kelurahan, in id order.
recipients = st.lists(
    st.tuples(
        st.sampled_from(KELURAHAN),
        st.sampled_from(["rw_rentan", "panti_asuhan", "pesantren"]),
        st.none() | st.integers(min_value=1, max_value=20),
        st.integers(min_value=0, max_value=500),
    ),
    max_size=20,
).map(lambda rows: [recipient_doc(i, *row) for i, row in enumerate(rows)])


@settings(deadline=None)
@given(docs=recipients, data=st.data())
def test_coverage_gaps_hold_exactly_the_recipients_without_a_recent_delivery(
    docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    days = data.draw(st.integers(min_value=1, max_value=60))
    since = NOW - timedelta(days=days)
    hours_ago = data.draw(
        st.lists(st.none() | st.integers(min_value=0, max_value=90 * 24), min_size=len(docs), max_size=len(docs))
    )
    last: dict[str, datetime] = {
        d["_id"]: NOW - timedelta(hours=h) for d, h in zip(docs, hours_ago, strict=True) if h is not None
    }
    open_needs = {d["_id"]: 1 + i % 3 for i, d in enumerate(docs)}
    report = coverage_report(docs, open_needs, last, now=NOW, days=days)
    in_gap = [d["_id"] for d in docs if d["_id"] not in last or last[d["_id"]] < since]
    assert [g["recipient_id"] for g in report["recipients"]] == in_gap
    assert report["since"] == since and report["days"] == days
    households = sum(g["households"] for g in report["recipients"])
    for level, rows in report["areas"].items():
        assert [r["code"] for r in rows] == sorted({g["area"][f"{level}_code"] for g in report["recipients"]})
        assert sum(r["recipients"] for r in rows) == len(in_gap)
        assert sum(r["households"] for r in rows) == households


def test_a_delivery_exactly_at_the_window_start_is_recent_enough() -> None:
    doc = {"_id": "rcp_1", "name": "RW 03", "kind": "rw_rentan", **area_fields(GAMBIR), "beneficiaries": {}}
    since = NOW - timedelta(days=14)
    assert coverage_report([doc], {"rcp_1": 1}, {"rcp_1": since}, now=NOW, days=14)["recipients"] == []
    gaps = coverage_report([doc], {"rcp_1": 2}, {}, now=NOW, days=14)["recipients"]
    assert [(g["open_needs"], g["households"], g["last_delivery_at"]) for g in gaps] == [(2, 0, None)]
    assert gap_areas(gaps)["kecamatan"] == [{"code": "31.71.01", "name": "Gambir", "recipients": 1, "households": 0}]


@settings(deadline=None)
@given(docs=recipients, data=st.data())
def test_statistics_add_up_across_every_dimension(docs: list[dict[str, Any]], data: st.DataObject) -> None:
    ids = [d["_id"] for d in docs] + ["rcp_unpublished"]
    counts = data.draw(st.lists(st.integers(min_value=0, max_value=50), min_size=len(ids), max_size=len(ids)))
    delivered = {i: n for i, n in zip(ids, counts, strict=True) if n}
    pledges = data.draw(
        st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(["d1", "d2", "d3"]), st.just("sembako")))
    )
    items = [{"_id": "sembako", "needs": 3, "requested": 90, "delivered": 12}]
    stats = programme_statistics(docs, delivered, pledges, items)
    totals = stats["totals"]
    assert (totals["code"], totals["recipients"]) == ("31", len(docs))
    for figure in ("recipients", "households_targeted", "households_reached", "packages_delivered"):
        for dimension in ("by_kota", "by_kecamatan", "by_kelurahan", "by_kind"):
            assert sum(row[figure] for row in stats[dimension]) == totals[figure], (figure, dimension)
    assert totals["packages_delivered"] == sum(delivered.get(d["_id"], 0) for d in docs)
    assert totals["households_reached"] == sum(
        d["beneficiaries"]["households"] for d in docs if delivered.get(d["_id"], 0) > 0
    )
    assert totals["donors"] == len({donor for _, donor, _ in pledges})
    for row in stats["by_kota"]:
        assert row["households_reached"] <= row["households_targeted"] and row["donors"] <= 3
    assert stats["by_item"] == [
        {"code": "sembako", "needs": 3, "requested": 90, "packages_delivered": 12,
         "donors": len({donor for _, donor, _ in pledges})}
    ]


def test_open_data_rows_flatten_the_public_views() -> None:
    doc = {
        "_id": "rcp_1", "name": "RW 03 Gambir", "kind": "rw_rentan", "organisation_id": "org_1",
        **area_fields(GAMBIR), "rw": 3, "beneficiaries": {"households": 40, "people": 160},
        "status": "active", "updated_at": NOW,
    }
    record = recipient_record(public_recipient(doc, {"org_1": "Yayasan"}, {"rcp_1": 2}, {"rcp_1": 10}))
    assert row_values("recipients", record)[:5] == ["rcp_1", "RW 03 Gambir", "rw_rentan", "org_1", "Yayasan"]
    assert (record["kelurahan_code"], record["households"], record["households_reached"]) == (GAMBIR, 40, 40)
    assert record["updated_at"] == NOW.isoformat()
    delivered = pledge("plg_1", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, version=3, delivered=8)
    entry = feed_entry(delivered, "evt_1", NOW) or {}
    row = delivery_record(entry, {"name": "RW 03 Gambir", "rw": 3, "beneficiaries": {"households": 40}}, "Yayasan")
    assert (row["quantity"], row["households"], row["status"], row["delivered_at"]) == (
        8, 40, "delivered", NOW.isoformat()
    )
    assert row["kelurahan_code"] == GAMBIR and "donor_id" not in row


def test_area_filters_and_domain_errors_map_to_the_public_error_body() -> None:
    assert checked_area_code("", "kota", "kota") is None and checked_area_code("31.71", "kota", "kota") == "31.71"
    with pytest.raises(UnknownAreaCode) as unknown:
        checked_area_code("31.71", "kecamatan", "kecamatan")
    require_public_status("active")
    with pytest.raises(RegistrationsNotPublished) as registered:
        require_public_status("registered")
    bodies = [
        (e.status, e.body.code, e.body.message, e.body.field)
        for e in map(
            api_error,
            [unknown.value, registered.value, NoPublicRecipient("r"), NoPublicNeed("n"), NoSnapshotFile("s", "f")],
        )
    ]
    assert bodies == [
        (422, "unknown_area", "'31.71' is not a known kecamatan code", "kecamatan"),
        (422, "not_public", "unverified registrations are not published", "status"),
        (404, "not_found", "no public recipient with this id", "recipient_id"),
        (404, "not_found", "no public need with this id", "need_id"),
        (404, "not_found", "no such snapshot file", "file_name"),
    ]
