"""Integration: the registry through HTTP on the real broker and database: events, idempotency, If-Match."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
from ksbb_contracts import CloudEvent, parse_event
from ksbb_contracts.events.pledges import NeedLedgerChanged
from ksbb_contracts.topics import NEEDS, ORGANISATIONS, RECIPIENTS, REGISTRY_CONTACTS
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.kafka import TopicReader, publish_events
from ksbb_kit.testing.waiting import eventually
from ksbb_registry.adapters.due import DueEntries
from ksbb_registry.api.deps import Services

from .conftest import Caller, need_payload, organisation_payload, recipient_payload

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reader(infra: Infra, module_namespace: str, service_app: Any) -> Any:
    """Everything the module's service publishes on the registry topics."""
    topics = [module_namespace + t.name for t in (ORGANISATIONS, RECIPIENTS, NEEDS, REGISTRY_CONTACTS)]
    async with TopicReader(infra.kafka_bootstrap, topics) as topic_reader:
        yield topic_reader


@pytest.fixture
def client(service_app: tuple[Any, httpx.AsyncClient]) -> httpx.AsyncClient:
    """HTTP client of the module's service."""
    return service_app[1]


@pytest.fixture
def admin(client: httpx.AsyncClient, dev_issuer: DevIssuer) -> Caller:
    """An administrator."""
    return Caller(client, dev_issuer.token("admin", subject="admin-1"))


async def new_org(admin: Caller) -> str:
    """Register an organisation and return its id."""
    response = await admin.post("/v1/organisations", json=organisation_payload())
    assert response.status_code == 201, response.text
    return response.json()["organisation_id"]


async def active_recipient(admin: Caller, org_id: str, **kwargs: Any) -> dict[str, Any]:
    """Register, verify and activate a recipient."""
    created = await admin.post("/v1/recipients", json=recipient_payload(org_id, **kwargs))
    assert created.status_code == 201, created.text
    rid = created.json()["recipient_id"]
    assert (
        await admin.post(f"/v1/recipients/{rid}/verify", json={"reason": "kunjungan lapangan"})
    ).status_code == 200
    activated = await admin.post(f"/v1/recipients/{rid}/activate", json={})
    assert activated.status_code == 200, activated.text
    return activated.json()


def of_subject(envelopes: list[CloudEvent], subject: str) -> list[CloudEvent]:
    """Envelopes about one aggregate."""
    return [e for e in envelopes if e.subject == subject]


async def test_recipient_lifecycle_emits_each_event_once_and_valid(
    admin: Caller,
    client: httpx.AsyncClient,
    dev_issuer: DevIssuer,
    reader: TopicReader,
) -> None:
    org_id = await new_org(admin)
    facilitator = Caller(client, dev_issuer.token("facilitator", org_id=org_id))
    created = await facilitator.post("/v1/recipients", json=recipient_payload(org_id))
    assert created.status_code == 201, created.text
    rid = created.json()["recipient_id"]
    assert created.json()["contact"]["phone"] == "+6281234567890"
    for action, body in (
        ("verify", {"reason": "survei", "document_refs": ["doc-1"]}),
        ("activate", {}),
        ("suspend", {"reason": "laporan warga"}),
    ):
        response = await facilitator.post(f"/v1/recipients/{rid}/{action}", json=body)
        assert response.status_code == 200, response.text
    assert (await facilitator.post(f"/v1/recipients/{rid}/reinstate", json={})).status_code == 403
    assert (await admin.post(f"/v1/recipients/{rid}/reinstate", json={})).json()["status"] == "active"
    expected = [
        "ksbb.recipient.registered.v1",
        "ksbb.recipient.verified.v1",
        "ksbb.recipient.activated.v1",
        "ksbb.recipient.suspended.v1",
        "ksbb.recipient.reinstated.v1",
    ]
    envelopes = await reader.wait_for(
        lambda es: [e.type for e in of_subject(es, rid) if e.type.startswith("ksbb.recipient.")] == expected
    )
    await asyncio.sleep(1.0)  # a duplicate would arrive right behind the originals
    mine = [e for e in of_subject(reader.envelopes(), rid) if e.type.startswith("ksbb.recipient.")]
    assert [e.type for e in mine] == expected
    versions = [parse_event(e).recipient.version for e in mine]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    for envelope in mine:
        event = parse_event(envelope)
        assert "contact" not in envelope.data["recipient"] and "Ibu Sari" not in envelope.model_dump_json()
        assert event.subject == rid
    contact = [e for e in of_subject(envelopes, rid) if e.type == "ksbb.recipient_contact.recorded.v1"]
    assert len(contact) == 1 and parse_event(contact[0]).phone == "+6281234567890"
    audit = (await facilitator.get(f"/v1/recipients/{rid}/audit")).json()
    assert [(a["action"], a["from_status"], a["to_status"]) for a in audit] == [
        ("register", None, "registered"),
        ("verify", "registered", "verified"),
        ("activate", "verified", "active"),
        ("suspend", "active", "suspended"),
        ("reinstate", "suspended", "active"),
    ]
    assert audit[1]["document_refs"] == ["doc-1"] and audit[3]["reason"] == "laporan warga"


async def test_illegal_transitions_get_409_and_missing_reason_422(admin: Caller) -> None:
    org_id = await new_org(admin)
    rid = (await admin.post("/v1/recipients", json=recipient_payload(org_id))).json()["recipient_id"]
    activate = await admin.post(f"/v1/recipients/{rid}/activate", json={})
    assert activate.status_code == 409 and activate.json()["code"] == "illegal_transition"
    verify = await admin.post(f"/v1/recipients/{rid}/verify", json={})
    assert (verify.status_code, verify.json()["field"]) == (422, "reason")
    need = await admin.post(f"/v1/recipients/{rid}/needs", json=need_payload())
    assert (need.status_code, need.json()["code"]) == (409, "recipient_not_active")


async def test_validation_errors_name_the_field(admin: Caller) -> None:
    org_id = await new_org(admin)
    bad_area = recipient_payload(org_id, kelurahan="31.71.01.9999")
    response = await admin.post("/v1/recipients", json=bad_area)
    assert (response.status_code, response.json()["field"]) == (422, "kelurahan_code")
    bad_phone = recipient_payload(org_id)
    bad_phone["contact"]["phone"] = "+1 415 555 0100"
    response = await admin.post("/v1/recipients", json=bad_phone)
    assert (response.status_code, response.json()["field"]) == (422, "contact.phone")
    far = {**recipient_payload(org_id), "coordinates": {"lat": -7.8, "lon": 110.36}}
    response = await admin.post("/v1/recipients", json=far)
    assert (response.status_code, response.json()["field"]) == (422, "coordinates")
    mismatch = {**recipient_payload(org_id, kelurahan="31.71.01.1001"), "kota_code": "31.75"}
    response = await admin.post("/v1/recipients", json=mismatch)
    assert (response.status_code, response.json()["field"]) == (422, "kota_code")


async def test_idempotent_creates_return_the_first_result(admin: Caller, reader: TopicReader) -> None:
    org_id = await new_org(admin)
    body = recipient_payload(org_id)
    headers = {"Idempotency-Key": "create-rw-1"}
    first, second = await asyncio.gather(
        admin.post("/v1/recipients", json=body, headers=headers),
        admin.post("/v1/recipients", json=body, headers=headers),
    )
    assert {first.status_code, second.status_code} == {201}
    assert first.json()["recipient_id"] == second.json()["recipient_id"]
    third = await admin.post("/v1/recipients", json=body, headers=headers)
    assert third.json() == first.json() and third.headers["Idempotent-Replayed"] == "true"
    reused = await admin.post("/v1/recipients", json={**body, "name": "Lain sama sekali"}, headers=headers)
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    listed = (await admin.get("/v1/recipients", params={"organisation_id": org_id})).json()["items"]
    assert len(listed) == 1
    rid = first.json()["recipient_id"]
    await reader.wait_for(lambda es: any(e.subject == rid for e in es))
    await asyncio.sleep(1.0)
    registered = [e for e in of_subject(reader.envelopes(), rid) if e.type == "ksbb.recipient.registered.v1"]
    assert len(registered) == 1


async def test_duplicates_are_refused_with_a_pointer_unless_an_admin_overrides(
    admin: Caller,
    client: httpx.AsyncClient,
    dev_issuer: DevIssuer,
) -> None:
    org_id = await new_org(admin)
    facilitator = Caller(client, dev_issuer.token("facilitator", org_id=org_id))
    first = await facilitator.post(
        "/v1/recipients", json=recipient_payload(org_id, kelurahan="31.72.01.1001", rw=7)
    )
    rid = first.json()["recipient_id"]
    same_rw = recipient_payload(org_id, kelurahan="31.72.01.1001", rw=7)
    refused = await facilitator.post("/v1/recipients", json=same_rw)
    assert refused.status_code == 409
    assert refused.json()["details"]["existing_recipient_id"] == rid
    panti = recipient_payload(org_id, kind="panti_asuhan", rw=None, name="Panti Asuhan Al-Ikhlas")
    panti["street_address"] = "Jl. Kenari No. 5"
    assert (await facilitator.post("/v1/recipients", json=panti)).status_code == 201
    again = {**panti, "name": "PANTI ASUHAN AL IKHLAS", "street_address": "Jalan Kenari nomor 5"}
    assert (await facilitator.post("/v1/recipients", json=again)).status_code == 409
    override = {**same_rw, "duplicate_override_reason": "RW dimekarkan"}
    assert (await facilitator.post("/v1/recipients", json=override)).status_code == 403
    allowed = await admin.post("/v1/recipients", json=override)
    assert allowed.status_code == 201
    audit = (await admin.get(f"/v1/recipients/{allowed.json()['recipient_id']}/audit")).json()
    assert audit[-1]["action"] == "duplicate_override" and audit[-1]["document_refs"] == [rid]


async def test_if_match_guards_updates_and_updates_emit_the_right_events(
    admin: Caller, client: httpx.AsyncClient, dev_issuer: DevIssuer, reader: TopicReader
) -> None:
    org_id = await new_org(admin)
    recipient = await active_recipient(admin, org_id)
    rid = recipient["recipient_id"]
    read = await admin.get(f"/v1/recipients/{rid}")
    etag = read.headers["ETag"]
    ok = await admin.patch(
        f"/v1/recipients/{rid}", json={"notes": "akses lewat gang"}, headers={"If-Match": etag}
    )
    assert ok.status_code == 200 and ok.headers["ETag"] != etag
    stale = await admin.patch(f"/v1/recipients/{rid}", json={"notes": "lain"}, headers={"If-Match": etag})
    assert (stale.status_code, stale.json()["code"]) == (412, "precondition_failed")
    own = Caller(client, dev_issuer.token("recipient", recipient_id=rid))
    assert (await own.patch(f"/v1/recipients/{rid}", json={"name": "Nama Baru RW"})).status_code == 403
    contact = {"name": "Pak Budi", "phone": "0813 1111 2222"}
    changed = await own.patch(f"/v1/recipients/{rid}", json={"contact": contact})
    assert changed.status_code == 200 and changed.json()["contact"]["phone"] == "+6281311112222"
    counts = {"households": 41, "people": 164}
    recounted = await admin.patch(f"/v1/recipients/{rid}", json={"beneficiaries": counts})
    assert recounted.status_code == 200

    def contact_and_update_events(envelopes: list[CloudEvent]) -> bool:
        types = [e.type for e in of_subject(envelopes, rid)]
        return types.count("ksbb.recipient_contact.recorded.v1") == 2 and "ksbb.recipient.updated.v1" in types

    envelopes = await reader.wait_for(contact_and_update_events)
    mine = of_subject(envelopes, rid)
    updates = [parse_event(e) for e in mine if e.type == "ksbb.recipient.updated.v1"]
    # Notes are private: only the beneficiary change produced a public update.
    assert len(updates) == 1 and updates[0].recipient.beneficiaries.households == 41
    latest_contact = [e for e in mine if e.type == "ksbb.recipient_contact.recorded.v1"][-1]
    assert parse_event(latest_contact).contact_name == "Pak Budi"


async def test_needs_ledger_and_fulfilment(
    admin: Caller,
    client: httpx.AsyncClient,
    dev_issuer: DevIssuer,
    infra: Infra,
    module_namespace: str,
    reader: TopicReader,
) -> None:
    org_id = await new_org(admin)
    rid = (await active_recipient(admin, org_id))["recipient_id"]
    own = Caller(client, dev_issuer.token("recipient", recipient_id=rid))
    created = await own.post(f"/v1/recipients/{rid}/needs", json=need_payload(quantity=10))
    assert created.status_code == 201, created.text
    need = created.json()
    nid = need["need_id"]
    assert (need["unit"], need["status"], need["kota_code"]) == ("paket", "open", need["kelurahan_code"][:5])

    def ledger(version: int, committed: int, delivered: int) -> NeedLedgerChanged:
        return NeedLedgerChanged(
            need_id=nid,
            recipient_id=rid,
            requested=10,
            committed=committed,
            in_transit=0,
            delivered=delivered,
            ledger_version=version,
            need_status="open",
            occurred_at=datetime.now(UTC),
        )

    await publish_events(infra.kafka_bootstrap, module_namespace, [ledger(1, 6, 0)])
    await need_reaches(own, nid, lambda n: n["ledger"]["committed"] == 6)
    below = await own.patch(f"/v1/needs/{nid}", json={"quantity": 5})
    assert (below.status_code, below.json()["code"]) == (409, "below_committed")
    assert (await own.patch(f"/v1/needs/{nid}", json={"quantity": 12})).status_code == 200
    # A stale ledger event (older version) arriving late changes nothing.
    await publish_events(infra.kafka_bootstrap, module_namespace, [ledger(3, 10, 10), ledger(2, 6, 6)])
    await need_reaches(own, nid, lambda n: n["status"] == "fulfilled")
    await asyncio.sleep(1.0)  # let the stale version-2 event be consumed too
    final = (await own.get(f"/v1/needs/{nid}")).json()
    assert final["ledger"]["ledger_version"] == 3 and final["ledger"]["delivered"] == 10
    assert (await own.post(f"/v1/needs/{nid}/cancel", json={"reason": "x"})).status_code == 409
    types = Counter(e.type for e in of_subject(reader.envelopes(), nid))
    assert types == {"ksbb.need.opened.v1": 1, "ksbb.need.changed.v1": 1, "ksbb.need.fulfilled.v1": 1}


async def test_suspension_closes_open_needs_and_archive_erases_the_contact(
    admin: Caller,
    reader: TopicReader,
    services: Services,
) -> None:
    org_id = await new_org(admin)
    rid = (await active_recipient(admin, org_id))["recipient_id"]
    needs = [
        (await admin.post(f"/v1/recipients/{rid}/needs", json=need_payload())).json()["need_id"]
        for _ in range(2)
    ]
    suspended = await admin.post(f"/v1/recipients/{rid}/suspend", json={"reason": "laporan sedang ditinjau"})
    assert suspended.status_code == 200
    for nid in needs:
        assert (await admin.get(f"/v1/needs/{nid}")).json()["status"] == "closed"
    await reader.wait_for(
        lambda es: all(
            [e.type for e in of_subject(es, nid)] == ["ksbb.need.opened.v1", "ksbb.need.closed.v1"]
            for nid in needs
        )
    )
    closed = parse_event(
        next(e for e in of_subject(reader.envelopes(), needs[0]) if e.type.endswith("closed.v1"))
    )
    assert closed.reason == "recipient_suspended"
    listed = (
        await admin.get("/v1/recipients", params={"organisation_id": org_id, "has_open_needs": True})
    ).json()
    assert listed["items"] == []
    archived = await admin.post(f"/v1/recipients/{rid}/archive", json={"reason": "tidak lagi beroperasi"})
    assert archived.status_code == 200 and archived.json()["contact"] is None

    def tombstoned() -> bool:
        return any(
            r.key == rid.encode() and r.value is None
            for r in reader.records
            if r.topic.endswith(REGISTRY_CONTACTS.name)
        )

    await reader.wait_for(lambda _: tombstoned())
    assert await services.needs.close_pending() == 0  # nothing left to repair


async def test_sweep_repairs_needs_left_open_by_a_crash(
    admin: Caller, services: Services, registry_db: Any
) -> None:
    org_id = await new_org(admin)
    rid = (await active_recipient(admin, org_id))["recipient_id"]
    nid = (await admin.post(f"/v1/recipients/{rid}/needs", json=need_payload())).json()["need_id"]
    # Simulate a crash right after the suspension write: status changed, needs not yet closed. The write path
    # leaves the sweep's entry before that write, so the crash leaves it too.
    await DueEntries(registry_db, "recipients.pending_need_closure").put(rid, None)
    await registry_db["recipients"].update_one(
        {"_id": rid}, {"$set": {"status": "suspended", "pending_need_closure": True}, "$inc": {"version": 1}}
    )
    assert (await admin.get(f"/v1/needs/{nid}")).json()["status"] == "open"
    assert await services.needs.close_pending() == 1
    assert (await admin.get(f"/v1/needs/{nid}")).json()["status"] == "closed"
    assert await services.needs.close_pending() == 0


async def test_recurring_needs_open_each_period(admin: Caller, clock: ManualClock, services: Services) -> None:
    org_id = await new_org(admin)
    rid = (await active_recipient(admin, org_id))["recipient_id"]
    first = (
        await admin.post(f"/v1/recipients/{rid}/needs", json=need_payload(recurrence="weekly", days=3))
    ).json()
    assert await services.needs.open_due_periods() == 0
    clock.advance(timedelta(days=7))
    assert await services.needs.open_due_periods() == 1
    assert await services.needs.open_due_periods() == 0  # idempotent
    series = (await admin.get("/v1/needs", params={"series_id": first["series_id"]})).json()["items"]
    assert len(series) == 2
    second = next(n for n in series if n["need_id"] != first["need_id"])
    assert second["status"] == "open" and second["quantity"] == first["quantity"]
    assert second["period_start"] > first["period_start"] and second["needed_by"] > first["needed_by"]
    await admin.post(f"/v1/needs/{second['need_id']}/cancel", json={"reason": "seri dihentikan"})
    clock.advance(timedelta(days=7))
    assert await services.needs.open_due_periods() == 0


async def test_lists_filter_and_paginate_stably(admin: Caller) -> None:
    org_id = await new_org(admin)
    ids = []
    for rw in range(1, 6):
        created = await admin.post(
            "/v1/recipients", json=recipient_payload(org_id, kelurahan="31.73.01.1001", rw=rw)
        )
        ids.append(created.json()["recipient_id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"organisation_id": org_id, "kecamatan": "31.73.01", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await admin.get("/v1/recipients", params=params)).json()
        seen += [r["recipient_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids)
    none = (await admin.get("/v1/recipients", params={"organisation_id": org_id, "kota": "31.71"})).json()
    assert none["items"] == []
    bad = await admin.get("/v1/recipients", params={"cursor": "!!!"})
    assert (bad.status_code, bad.json()["field"]) == (422, "cursor")


async def test_public_reports_are_rate_limited_and_resolved(
    admin: Caller,
    client: httpx.AsyncClient,
    dev_issuer: DevIssuer,
) -> None:
    org_id = await new_org(admin)
    rid = (await active_recipient(admin, org_id))["recipient_id"]
    anonymous = Caller(client, None)
    statuses = [
        (
            await anonymous.post(
                f"/v1/recipients/{rid}/reports", json={"text": f"Bantuan dijual kembali ({i})"}
            )
        ).status_code
        for i in range(4)
    ]
    assert statuses[:3] == [201, 201, 201] and statuses[3] == 429
    limited = await anonymous.post(f"/v1/recipients/{rid}/reports", json={"text": "Bantuan dijual kembali"})
    assert int(limited.headers["Retry-After"]) > 0
    other = Caller(client, dev_issuer.token("facilitator", org_id="org_other"))
    assert (await other.get("/v1/reports", params={"recipient_id": rid})).json()["items"] == []
    facilitator = Caller(client, dev_issuer.token("facilitator", org_id=org_id))
    reports = (await facilitator.get("/v1/reports", params={"recipient_id": rid})).json()["items"]
    assert len(reports) == 3
    resolved = await facilitator.post(
        f"/v1/reports/{reports[0]['report_id']}/resolve", json={"outcome": "dismissed", "note": "sudah dicek"}
    )
    assert resolved.json()["status"] == "resolved"
    assert (
        await other.post(
            f"/v1/reports/{reports[1]['report_id']}/resolve", json={"outcome": "dismissed", "note": "x"}
        )
    ).status_code == 403


async def test_areas_catalogue_and_suggestions(admin: Caller) -> None:
    anonymous_client = admin.client
    kota = (await anonymous_client.get("/v1/areas", params={"parent": "31"})).json()
    assert len(kota) == 6 and all(a["level"] == "kota" for a in kota)
    tree = (await anonymous_client.get("/v1/areas/tree")).json()
    assert tree["tree"]["code"] == "31"
    assert (await anonymous_client.get("/v1/areas", params={"parent": "99"})).status_code == 422
    catalogue = (await anonymous_client.get("/v1/catalogue")).json()
    assert next(c for c in catalogue if c["item"] == "sembako")["reference_price_idr"] == 200_000
    org_id = await new_org(admin)
    rid = (await admin.post("/v1/recipients", json=recipient_payload(org_id))).json()["recipient_id"]
    suggestions = (await admin.get(f"/v1/recipients/{rid}/need-suggestions")).json()
    assert next(s for s in suggestions if s["item"] == "sembako")["quantity"] == 40


async def test_organisation_events_keep_the_contact_confidential(admin: Caller, reader: TopicReader) -> None:
    org_id = await new_org(admin)
    read = await admin.get(f"/v1/organisations/{org_id}")
    updated = await admin.patch(
        f"/v1/organisations/{org_id}",
        json={"area_codes": ["31.71", "31.72"]},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert updated.status_code == 200
    assert (
        await admin.patch(
            f"/v1/organisations/{org_id}", json={"name": "X Y"}, headers={"If-Match": read.headers["ETag"]}
        )
    ).status_code == 412
    assert (
        await admin.post(f"/v1/organisations/{org_id}/suspend", json={"reason": "audit"})
    ).status_code == 200
    expected = [
        "ksbb.organisation.registered.v1",
        "ksbb.organisation_contact.recorded.v1",
        "ksbb.organisation.updated.v1",
        "ksbb.organisation.suspended.v1",
    ]
    envelopes = await reader.wait_for(lambda es: [e.type for e in of_subject(es, org_id)] == expected)
    for envelope in of_subject(envelopes, org_id):
        parse_event(envelope)
        if envelope.type.startswith("ksbb.organisation."):
            assert "kontak@lembaga.example" not in envelope.model_dump_json()


async def need_reaches(caller: Caller, need_id: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Read a need until its JSON satisfies a predicate (ledger events arrive asynchronously)."""

    async def check() -> dict[str, Any] | None:
        body: dict[str, Any] = (await caller.get(f"/v1/needs/{need_id}")).json()
        return body if predicate(body) else None

    found: dict[str, Any] = await eventually(check, what=f"need {need_id} reaching the expected state")
    return found


def published_schemas() -> dict[str, Any]:
    """The JSON schemas in docs/events, by event type (file name without .json)."""
    docs = Path(__file__).resolve().parents[3] / "docs" / "events"
    return {path.stem: json.loads(path.read_text()) for path in docs.glob("*.json")}


async def test_every_published_event_matches_its_published_json_schema(reader: TopicReader) -> None:
    # Runs last in this module: by now the earlier tests have published every kind of registry event.
    schemas = published_schemas()
    envelope_schema = schemas["cloudevent.envelope"]
    envelopes = reader.envelopes()
    seen_types = set()
    for envelope in envelopes:
        raw = json.loads(envelope.to_bytes())
        jsonschema.validate(raw, envelope_schema)
        jsonschema.validate(raw["data"], schemas[envelope.type])
        seen_types.add(envelope.type)
    assert {
        "ksbb.recipient.registered.v1",
        "ksbb.recipient.archived.v1",
        "ksbb.need.opened.v1",
        "ksbb.need.closed.v1",
        "ksbb.need.cancelled.v1",
        "ksbb.need.fulfilled.v1",
        "ksbb.need.changed.v1",
        "ksbb.organisation.registered.v1",
        "ksbb.recipient_contact.recorded.v1",
    } <= seen_types
