"""Projections from real events on the real broker and database, the public API, caching, rebuild, SSE."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from ksbb_contracts.events import (
    MatchProposed,
    OfferCreated,
    OrganisationUpdated,
    ProposedAllocation,
    RecipientRegistered,
)
from ksbb_contracts.vocab import Item, RecipientKind, RecipientStatus
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_kit.mongo import connect
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.kafka import publish_events
from ksbb_kit.testing.service import served
from ksbb_kit.testing.waiting import eventually
from ksbb_publisher.adapters.projection_store import FEED_SEQUENCE, MongoProjectionStore
from ksbb_publisher.bootstrap import Publisher, create_app, rebuild
from ksbb_publisher.domain.projection import READ_MODELS, VOLATILE_FIELDS
from ksbb_publisher.settings import PublisherSettings

from .support import NOW, donor, ledger, minutes, need, organisation, pledge, recipient

pytestmark = pytest.mark.integration

GAMBIR, PENJARINGAN, TEBET_TIMUR = "31.71.01.1001", "31.72.01.1001", "31.74.01.1001"


def load_hxl() -> Any:
    """libhxl, the HXL reference library."""
    import hxl

    return hxl


@dataclass
class Env:
    """One running publisher shared by this module's tests."""

    settings: PublisherSettings
    base: str
    client: httpx.AsyncClient
    parts: Publisher
    clock: ManualClock
    ids: dict[str, str]


@pytest.fixture(scope="module")
async def env(infra: Infra, dev_issuer: DevIssuer) -> AsyncIterator[Env]:
    """Publish a scenario with redeliveries and cross-topic disorder, with the publisher running."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = PublisherSettings(
        env="test",
        kafka_bootstrap=infra.kafka_bootstrap,
        mongodb_url=infra.mongodb_url,
        topic_prefix=prefix,
        jwks_url=str(dev_issuer.jwks_path),
        jwt_issuer=dev_issuer.issuer,
        jwt_audience=dev_issuer.audience,
        handler_backoff_seconds=0.05,
        sse_heartbeat_seconds=0.5,
        feed_poll_seconds=0.5,
        snapshot_interval_seconds=3600,
        snapshot_chunk_bytes=1024,
    )
    clock = ManualClock(NOW + timedelta(days=1))
    app = create_app(settings, clock=clock)
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        boot = settings.kafka_bootstrap
        p1_created_id = f"evt_{uuid.uuid4().hex}"
        org_v1_id = f"evt_{uuid.uuid4().hex}"
        await publish_events(
            boot, prefix, [organisation("org_1", "Yayasan Peduli Jakarta")], event_ids=[org_v1_id]
        )
        await publish_events(
            boot,
            prefix,
            [
                OrganisationUpdated(
                    organisation=organisation("org_1", "Yayasan Peduli Jakarta Raya", 2).organisation
                ),
                recipient("rcp_1", "org_1", GAMBIR, "RW 03 Gambir", households=40, version=2),
                recipient(
                    "rcp_1",
                    "org_1",
                    GAMBIR,
                    "RW 03 Gambir",
                    households=40,
                    version=1,
                    cls=RecipientRegistered,
                    status=RecipientStatus.REGISTERED,
                ),  # stale: arrives after version 2
                recipient(
                    "rcp_2",
                    "org_1",
                    PENJARINGAN,
                    "Panti Asuhan Kasih",
                    kind=RecipientKind.PANTI_ASUHAN,
                    households=10,
                    rw=None,
                ),
                recipient(
                    "rcp_3",
                    "org_1",
                    TEBET_TIMUR,
                    "Pesantren Belum Terverifikasi",
                    kind=RecipientKind.PESANTREN,
                    version=1,
                    cls=RecipientRegistered,
                    status=RecipientStatus.REGISTERED,
                ),
                # ledger of need_2 arrives before need_2 itself opened (another topic)
                ledger("need_2", "rcp_2", requested=20, committed=5, version=1, at=NOW + minutes(3)),
                need("need_1", "rcp_1", "org_1", GAMBIR, quantity=40),
                need("need_2", "rcp_2", "org_1", PENJARINGAN, item=Item.BABY_MILK, quantity=20),
                need("need_0", "rcp_3", "org_1", TEBET_TIMUR, quantity=5),  # of an unpublished recipient
                donor("donor_1", "PT Sumber Berkah", show=True),
                donor("donor_2", "Nama Rahasia Sekali", show=False),
                ledger("need_1", "rcp_1", requested=40, committed=10, version=1, at=NOW + minutes(1)),
                ledger(
                    "need_1",
                    "rcp_1",
                    requested=40,
                    committed=0,
                    delivered=10,
                    version=3,
                    at=NOW + minutes(120),
                ),
                ledger(
                    "need_1",
                    "rcp_1",
                    requested=40,
                    committed=10,
                    in_transit=0,
                    version=2,
                    at=NOW + minutes(60),
                ),
            ],
        )
        await publish_events(
            boot,
            prefix,
            [
                pledge("plg_1", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, at=NOW + minutes(1)),
            ],
            event_ids=[p1_created_id],
        )
        await publish_events(
            boot,
            prefix,
            [
                pledge(
                    "plg_2",
                    "need_2",
                    "rcp_2",
                    "org_1",
                    "donor_2",
                    PENJARINGAN,
                    quantity=5,
                    at=NOW + minutes(3),
                    item=Item.BABY_MILK,
                ),
                pledge(
                    "plg_1",
                    "need_1",
                    "rcp_1",
                    "org_1",
                    "donor_1",
                    GAMBIR,
                    version=3,
                    delivered=10,
                    at=NOW + minutes(120),
                ),
                OfferCreated(
                    offer_id="off_1",
                    donor_id="donor_1",
                    item=Item.SEMBAKO,
                    quantity=5,
                    area_codes=["31.71"],
                    available_until=NOW.date() + timedelta(days=9),
                    occurred_at=NOW,
                ),
                MatchProposed(
                    offer_id="off_1",
                    donor_id="donor_1",
                    occurred_at=NOW + minutes(1),
                    allocations=[ProposedAllocation(need_id="need_1", recipient_id="rcp_1", quantity=5)],
                ),
            ],
        )
        # redeliveries: the same event ids again
        await publish_events(
            boot, prefix, [organisation("org_1", "Yayasan Peduli Jakarta")], event_ids=[org_v1_id]
        )
        await publish_events(
            boot,
            prefix,
            [
                pledge("plg_1", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, at=NOW + minutes(1)),
            ],
            event_ids=[p1_created_id],
        )
        db = app.state.parts.db

        async def settled() -> bool:
            offer = await db.offers.find_one({"_id": "off_1"})
            need_1 = await db.needs.find_one({"_id": "need_1"})
            return (
                await db.feed.count_documents({}) == 3
                and offer is not None
                and offer.get("status") == "proposed"
                and need_1 is not None
                and need_1.get("ledger_version") == 3
                and await db.needs.count_documents({"version": {"$exists": True}}) == 3
                and await db.organisations.count_documents({"version": 2}) == 1
            )

        await eventually(settled, within=40, interval=0.2, what="scenario projected")
        yield Env(settings, base, client, app.state.parts, clock, {"p1_created": p1_created_id})


async def test_recipients_are_projected_with_area_names_and_stale_events_ignored(env: Env) -> None:
    page = (await env.client.get("/v1/public/recipients")).json()
    by_id = {r["recipient_id"]: r for r in page["items"]}
    assert set(by_id) == {"rcp_1", "rcp_2"}  # the unverified registration is not published
    gambir = by_id["rcp_1"]
    assert gambir["status"] == "active"  # version 1 arriving after version 2 changed nothing
    assert gambir["area"]["kelurahan_name"] == "Gambir"
    assert gambir["area"]["kota_code"] == "31.71" and gambir["area"]["kota_name"] == "Jakarta Pusat"
    assert gambir["organisation_name"] == "Yayasan Peduli Jakarta Raya"  # redelivered v1 ignored
    assert gambir["households_reached"] == 40 and gambir["packages_delivered"] == 10
    assert by_id["rcp_2"]["households_reached"] == 0


async def test_recipient_filters_and_cursor_pagination(env: Env) -> None:
    async def ids(**params: Any) -> list[str]:
        response = await env.client.get("/v1/public/recipients", params=params)
        assert response.status_code == 200, response.text
        return [r["recipient_id"] for r in response.json()["items"]]

    assert await ids(kota="31.71") == ["rcp_1"]
    assert await ids(kecamatan="31.72.01") == ["rcp_2"]
    assert await ids(kelurahan=GAMBIR) == ["rcp_1"]
    assert await ids(kind="panti_asuhan") == ["rcp_2"]
    assert await ids(has_open_needs="true") == ["rcp_1", "rcp_2"]
    assert await ids(has_open_needs="false") == []
    first = (await env.client.get("/v1/public/recipients", params={"limit": 1})).json()
    assert [r["recipient_id"] for r in first["items"]] == ["rcp_1"] and first["next_cursor"]
    second = (
        await env.client.get("/v1/public/recipients", params={"limit": 1, "cursor": first["next_cursor"]})
    ).json()
    assert [r["recipient_id"] for r in second["items"]] == ["rcp_2"] and second["next_cursor"] is None
    bad = await env.client.get("/v1/public/recipients", params={"kota": "99.99"})
    assert bad.status_code == 422 and bad.json()["field"] == "kota"
    assert (await env.client.get("/v1/public/recipients/rcp_3")).status_code == 404


async def test_needs_take_the_newest_ledger_version_even_out_of_order(env: Env) -> None:
    need_1 = (await env.client.get("/v1/public/needs/need_1")).json()
    assert need_1["progress"] == {
        "requested": 40,
        "committed": 0,
        "in_transit": 0,
        "delivered": 10,
        "remaining": 30,
        "percent_delivered": 25,
        "percent_pledged": 25,
    }
    need_2 = (await env.client.get("/v1/public/needs/need_2")).json()
    assert need_2["item"] == "baby_milk" and need_2["progress"]["committed"] == 5  # ledger came first
    assert need_2["recipient_name"] == "Panti Asuhan Kasih"
    listed = (await env.client.get("/v1/public/needs", params={"item": "baby_milk"})).json()["items"]
    assert [n["need_id"] for n in listed] == ["need_2"]

    async def need_ids(**params: str) -> list[str]:
        answer = await env.client.get("/v1/public/needs", params=params)
        assert answer.status_code == 200, answer.text
        return [n["need_id"] for n in answer.json()["items"]]

    assert await need_ids(kind="panti_asuhan") == ["need_2"]
    assert await need_ids(kind="rw_rentan") == ["need_1"]
    assert await need_ids(kind="pesantren") == []
    assert await need_ids(priority="high") == ["need_1", "need_2"]
    assert await need_ids(priority="low") == []
    assert await need_ids(kind="rw_rentan", priority="high", item="sembako") == ["need_1"]
    for field, value in (("kind", "panti"), ("priority", "urgent")):
        bad = await env.client.get("/v1/public/needs", params={field: value})
        assert bad.status_code == 422 and bad.json()["field"] == field, bad.text
    first = (await env.client.get("/v1/public/needs", params={"limit": 1})).json()
    second = (
        await env.client.get("/v1/public/needs", params={"limit": 1, "cursor": first["next_cursor"]})
    ).json()
    assert [n["need_id"] for n in first["items"] + second["items"]] == ["need_1", "need_2"]
    assert second["next_cursor"] is None
    assert (await env.client.get("/v1/public/needs/need_0")).status_code == 404
    detail = (await env.client.get("/v1/public/recipients/rcp_1")).json()
    assert [n["need_id"] for n in detail["needs"]] == ["need_1"]


async def test_feed_is_newest_first_once_per_event_with_donor_names_only_if_opted_in(env: Env) -> None:
    feed = (await env.client.get("/v1/public/feed")).json()["items"]
    assert [(e["kind"], e["pledge_id"]) for e in feed] == [
        ("delivered", "plg_1"),
        ("pledged", "plg_2"),
        ("pledged", "plg_1"),
    ]
    assert [e["donor_name"] for e in feed] == ["PT Sumber Berkah", "Kolaborator anonim", "PT Sumber Berkah"]
    assert feed[0]["delivered_quantity"] == 10
    page = (await env.client.get("/v1/public/feed", params={"limit": 2})).json()
    rest = (
        await env.client.get("/v1/public/feed", params={"limit": 2, "cursor": page["next_cursor"]})
    ).json()
    assert [e["id"] for e in page["items"] + rest["items"]] == [e["id"] for e in feed]
    everything = json.dumps(
        [(await env.client.get(p)).text for p in ("/v1/public/feed", "/v1/public/feed.atom", "/")]
    )
    assert "Nama Rahasia Sekali" not in everything
    atom = await env.client.get("/v1/public/feed.atom")
    assert atom.headers["content-type"].startswith("application/atom+xml") and "PT Sumber Berkah" in atom.text


async def test_statistics_and_coverage_gaps(env: Env) -> None:
    stats = (await env.client.get("/v1/public/stats")).json()
    totals = stats["totals"]
    assert (
        totals["recipients"],
        totals["households_targeted"],
        totals["households_reached"],
        totals["packages_delivered"],
        totals["donors"],
    ) == (2, 50, 40, 10, 2)
    assert {r["code"]: r["recipients"] for r in stats["by_kota"]} == {"31.71": 1, "31.72": 1}
    assert {r["code"]: r["households_reached"] for r in stats["by_kind"]} == {
        "panti_asuhan": 0,
        "rw_rentan": 40,
    }
    assert {r["code"]: r["packages_delivered"] for r in stats["by_item"]} == {"baby_milk": 0, "sembako": 10}
    assert [r["code"] for r in stats["by_kelurahan"]] == [GAMBIR, PENJARINGAN]
    gaps = (await env.client.get("/v1/public/coverage-gaps", params={"days": 14})).json()
    assert [g["recipient_id"] for g in gaps["recipients"]] == ["rcp_2"]  # rcp_1 had a delivery yesterday
    assert [a["code"] for a in gaps["areas"]["kecamatan"]] == ["31.72.01"]
    env.clock.advance(timedelta(days=30))
    try:
        later = (await env.client.get("/v1/public/coverage-gaps", params={"days": 14})).json()
        assert [g["recipient_id"] for g in later["recipients"]] == ["rcp_1", "rcp_2"]
    finally:
        env.clock.advance(timedelta(days=-30))


async def test_every_public_get_has_etag_cache_control_and_answers_304(env: Env) -> None:
    for path in (
        "/v1/public/recipients",
        "/v1/public/needs",
        "/v1/public/feed",
        "/v1/public/stats",
        "/v1/public/coverage-gaps",
        "/v1/public/organisations",
        "/v1/public/feed.atom",
        "/",
        "/v1/public/exports/needs.csv",
        "/v1/public/recipients/rcp_1",
        "/v1/public/exports/snapshots",
    ):
        first = await env.client.get(path)
        assert first.status_code == 200, path
        assert first.headers["etag"] and "max-age" in first.headers["cache-control"], path
        again = await env.client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path
        other = await env.client.get(path, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200, path


async def test_exports_parse_with_libhxl_and_carry_kemendagri_codes(env: Env) -> None:
    hxl = load_hxl()
    expected = {
        "recipients": {
            "#loc+name",
            "#org+name",
            "#adm1+code",
            "#adm2+code",
            "#adm3+code",
            "#adm4+code",
            "#loc+rw",
            "#targeted+hh",
            "#reached+hh",
            "#status",
        },
        "needs": {"#item+code", "#need+num", "#reached+num", "#adm4+code", "#date+deadline", "#status"},
        "deliveries": {"#date+reported", "#item+code", "#reached+num", "#reached+hh", "#adm2+code"},
    }
    for dataset, tags in expected.items():
        for fmt in ("csv", "json"):
            response = await env.client.get(f"/v1/public/exports/{dataset}.{fmt}")
            assert response.status_code == 200
            source = hxl.data(io.BytesIO(response.content), hxl.InputOptions(allow_local=True))
            found = {column.display_tag for column in source.columns}
            assert tags <= found, (dataset, fmt, tags - found)
            rows = [row for row in source]
            if dataset == "recipients":
                gambir = next(r for r in rows if r.get("#loc+code") == "rcp_1")
                assert gambir.get("#adm4+code") == GAMBIR and gambir.get("#adm2+name") == "Jakarta Pusat"
                assert gambir.get("#org+name") == "Yayasan Peduli Jakarta Raya"
                assert len(rows) == 2
            if dataset == "deliveries":
                assert [(r.get("#activity+code"), r.get("#reached+num")) for r in rows] == [("plg_1", "10")]
    csv_text = (await env.client.get("/v1/public/exports/needs.csv")).text
    assert csv_text.splitlines()[1].startswith("#need+code,#loc+code")


async def test_daily_snapshot_is_listed_with_a_checksum_that_matches_the_download(env: Env) -> None:
    env.clock.advance(timedelta(days=1))  # the job took today's snapshot at start-up; this is the next day's
    try:
        taken = await env.parts.snapshots.take(env.clock.now())
        assert taken is not None and await env.parts.snapshots.take(env.clock.now()) is None  # once per day
        today = env.clock.now().date().isoformat()
    finally:
        env.clock.advance(timedelta(days=-1))
    listing = (await env.client.get("/v1/public/exports/snapshots")).json()
    snapshot = listing["snapshots"][0]
    assert snapshot["snapshot_id"] == today
    assert {f["name"] for f in snapshot["files"]} == {
        f"{d}.{f}" for d in ("recipients", "needs", "deliveries") for f in ("csv", "json")
    }
    for file in snapshot["files"]:
        body = (await env.client.get(file["url"])).content
        assert hashlib.sha256(body).hexdigest() == file["sha256"] and len(body) == file["bytes"]
    live = (await env.client.get("/v1/public/exports/needs.csv")).content
    needs_csv = next(f for f in snapshot["files"] if f["name"] == "needs.csv")
    assert hashlib.sha256(live).hexdigest() == needs_csv["sha256"]
    page = await env.client.get("/v1/public/exports/snapshots", headers={"accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html") and needs_csv["sha256"] in page.text


async def test_sse_resumes_after_last_event_id_streams_live_entries_and_sends_heartbeats(env: Env) -> None:
    feed = sorted((await env.client.get("/v1/public/feed")).json()["items"], key=lambda e: e["seq"])
    first = feed[0]["seq"]
    received: list[dict[str, Any]] = []
    saw_heartbeat = False
    async with httpx.AsyncClient(base_url=env.base, timeout=httpx.Timeout(10, read=30)) as client:
        async with client.stream(
            "GET", "/v1/public/feed/stream", headers={"Last-Event-ID": str(first)}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            published = False
            event_id = None
            async for line in response.aiter_lines():
                if line.startswith(": heartbeat"):
                    saw_heartbeat = True
                if line.startswith("id: "):
                    event_id = line[4:]
                if line.startswith("data: "):
                    entry = json.loads(line[6:])
                    assert str(entry["seq"]) == event_id
                    received.append(entry)
                if len(received) == 2 and not published:
                    published = True
                    await publish_events(
                        env.settings.kafka_bootstrap,
                        env.settings.topic_prefix,
                        [pledge("plg_9", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, at=NOW + minutes(5))],
                    )
                if len(received) == 3 and saw_heartbeat:
                    break
    assert [e["id"] for e in received[:2]] == [e["id"] for e in feed[1:3]]  # replay, in insertion order
    assert received[2]["pledge_id"] == "plg_9" and received[2]["donor_name"] == "PT Sumber Berkah"
    assert received[2]["seq"] > received[1]["seq"]


async def read_stream_until_quiet(last_event_id: str, base: str) -> list[dict[str, Any]]:
    """Entries an SSE client receives when it (re)connects with Last-Event-ID, up to the first heartbeat."""
    entries: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=30)) as client:
        async with client.stream(
            "GET", "/v1/public/feed/stream", headers={"Last-Event-ID": last_event_id}
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    entries.append(json.loads(line[6:]))
                if line.startswith(": heartbeat"):
                    break  # the replay is complete once the stream goes quiet
    return entries


async def test_sse_resume_delivers_a_late_entry_with_an_older_event_time_exactly_once(env: Env) -> None:
    seen = await read_stream_until_quiet("0", env.base)
    assert seen and len({e["id"] for e in seen}) == len(seen)
    last_seen = seen[-1]
    # Disconnected. Now an event that happened long before everything seen is projected (a late topic).
    await publish_events(
        env.settings.kafka_bootstrap,
        env.settings.topic_prefix,
        [pledge("plg_late", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, at=NOW - minutes(600))],
    )

    async def projected() -> bool:
        return await env.parts.db.feed.count_documents({"pledge_id": "plg_late"}) == 1

    await eventually(projected, within=40, interval=0.2, what="late entry projected")
    resumed = await read_stream_until_quiet(str(last_seen["seq"]), env.base)
    assert [e["pledge_id"] for e in resumed] == ["plg_late"]  # exactly once, nothing seen before again
    late = resumed[0]
    assert late["occurred_at"] < min(e["occurred_at"] for e in seen)  # an event-time cursor would skip it
    assert late["id"] < last_seen["id"] and late["seq"] > last_seen["seq"]
    # A client resuming with a pre-upgrade cursor id (event time ~ event id) is served too.
    assert [e["pledge_id"] for e in await read_stream_until_quiet(last_seen["id"], env.base)] == ["plg_late"]


async def test_feed_seq_has_no_gaps_or_repeats_across_replicas_and_redeliveries(infra: Infra) -> None:
    client = connect(infra.mongodb_url)
    db = client[f"t{uuid.uuid4().hex[:10]}_feed_seq"]
    try:
        # Entries written before `seq` existed are numbered at startup, in cursor order.
        await db.feed.insert_many([{"_id": f"old{n}", "cursor": f"2026-01-0{3 - n}"} for n in range(3)])
        replica_a, replica_b = MongoProjectionStore(db), MongoProjectionStore(db)
        await replica_a.ensure_indexes()
        old = {d["_id"]: d["seq"] async for d in db.feed.find({})}
        assert old == {"old2": 1, "old1": 2, "old0": 3}

        def entry(n: int) -> dict[str, Any]:
            return {"_id": f"evt{n}", "cursor": f"2025-12-{n % 28 + 1:02d}~evt{n}"}

        # Two replicas insert concurrently, and both see some of the same events (redeliveries).
        results = await asyncio.gather(
            *(replica_a.insert_feed_entry(entry(n)) for n in range(30)),
            *(replica_b.insert_feed_entry(entry(n)) for n in range(20, 50)),
        )
        assert sum(r is not None for r in results) == 50
        seqs = sorted([d["seq"] async for d in db.feed.find({"_id": {"$regex": "^evt"}})])
        assert seqs == list(range(4, 54))
        assert await replica_b.insert_feed_entry(entry(7)) is None  # a later redelivery changes nothing
        assert await db.feed.count_documents({}) == 53
        # After a rebuild the numbers continue above every seq handed out before.
        await db[FEED_SEQUENCE].update_one({"_id": "feed"}, {"$max": {"floor": 53}}, upsert=True)
        await db.drop_collection("feed")
        rebuilt = MongoProjectionStore(db)
        await rebuilt.ensure_indexes()
        again = await rebuilt.insert_feed_entry(entry(1))
        assert again is not None and again["seq"] == 54
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_donor_opt_out_applies_to_past_entries(env: Env) -> None:
    await publish_events(
        env.settings.kafka_bootstrap,
        env.settings.topic_prefix,
        [donor("donor_1", "PT Sumber Berkah", show=False, version=2)],
    )

    async def anonymous() -> bool:
        items = (await env.client.get("/v1/public/feed")).json()["items"]
        return all(e["donor_name"] == "Kolaborator anonim" for e in items)

    await eventually(anonymous, within=40, interval=0.2, what="donor_1 shown anonymously")
    assert "PT Sumber Berkah" not in (await env.client.get("/")).text
    stored = await env.parts.db.donors.find_one({"_id": "donor_1"})
    assert stored is not None and stored["display_name"] is None


async def test_rebuild_from_the_topics_gives_identical_read_models(env: Env) -> None:
    source = env.parts.db
    target_name = f"{env.settings.database_name}_rebuilt"
    counts = await rebuild(env.settings, database=target_name)
    assert counts["applied"] >= 20
    client = connect(env.settings.mongodb_url)
    try:
        target = client[target_name]
        for name in READ_MODELS:

            def strip(doc: dict[str, Any]) -> dict[str, Any]:
                return {k: v for k, v in doc.items() if k not in VOLATILE_FIELDS}

            live = [strip(d) async for d in source[name].find({}).sort("_id", 1)]
            rebuilt = [strip(d) async for d in target[name].find({}).sort("_id", 1)]
            assert live, name
            assert rebuilt == live, name
        await client.drop_database(target_name)
    finally:
        await client.close()


async def test_demo_seed_waits_for_seeded_data_and_prints_the_dashboard(
    env: Env,
    dev_issuer: DevIssuer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ksbb_kit.demo import DemoContext
    from ksbb_publisher.demo import seed

    ctx = DemoContext(
        urls={"publisher": env.base},
        issuer=dev_issuer,
        state={"registry": {"recipients": ["rcp_1", "rcp_2"]}, "pledges": {"pledges": ["plg_1"]}},
    )
    await seed(ctx)
    await seed(DemoContext(urls={"publisher": env.base}, issuer=dev_issuer))  # other seeds absent: still fine
    out = capsys.readouterr().out
    assert f"dashboard {env.base}/" in out and "2 public recipients" in out
