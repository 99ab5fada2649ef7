"""Privacy check: recognisable contact data planted next to public events never reaches a public output."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from bson import json_util
from ksbb_contracts.events import DonorContactRecorded, OrganisationContactRecorded, RecipientContactRecorded
from ksbb_contracts.topics import DONOR_CONTACTS, REGISTRY_CONTACTS
from ksbb_kit.testing.kafka import TopicReader, publish_events
from ksbb_kit.testing.service import served
from ksbb_kit.testing.waiting import eventually
from ksbb_publisher.bootstrap import create_app
from ksbb_publisher.settings import PublisherSettings

from .support import NOW, donor, ledger, minutes, need, organisation, pledge, recipient

pytestmark = pytest.mark.integration

KEL = "31.75.01.1001"
#: Planted strings, matched case-insensitively; phone numbers are matched on their digits in any spelling.
PLANTED_TEXT = (
    "budi santoso",
    "budi.santoso",
    "budi.santoso@example.org",
    "siti rahmawati",
    "siti.r@example.net",
    "jl. melati no. 7",
    "catatan rahasia",
    "ani wijaya",
)
PLANTED_PHONES = ("81234567890", "81398765432", "2155512345")
PHONE_LIKE = re.compile(r"\+?\d[\d\s().\-]{5,}\d")


def leaks(text: str) -> set[str]:
    """Which planted strings a text contains (names in any case, phones in any spelling)."""
    lowered = text.lower()
    found = {s for s in PLANTED_TEXT if s in lowered}
    for match in PHONE_LIKE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        found |= {p for p in PLANTED_PHONES if p in digits}
    return found


def contact_events() -> list[Any]:
    """Confidential contact events with the planted data in several spellings."""
    return [
        RecipientContactRecorded(
            recipient_id="rcp_p",
            organisation_id="org_p",
            contact_name="BUDI SANTOSO",
            phone="0812-3456-7890",
            email="budi.santoso@example.org",
            street_address="Jl. Melati No. 7 RT 02 — catatan rahasia: Budi Santoso",
        ),
        RecipientContactRecorded(
            recipient_id="rcp_p",
            organisation_id="org_p",
            contact_name="Budi Santoso",
            phone="+62 812 3456 7890",
            email="BUDI.SANTOSO@EXAMPLE.ORG",
        ),
        OrganisationContactRecorded(
            organisation_id="org_p",
            contact_name="Ani Wijaya",
            email="ani@yayasan.example",
            phone="(021) 555-12345",
        ),
        DonorContactRecorded(
            donor_id="donor_p", name="Siti Rahmawati", email="siti.r@example.net", phone="+62-813-9876-5432"
        ),
    ]


async def scan_publisher(
    client: httpx.AsyncClient, db: Any, recipient_id: str, need_id: str
) -> dict[str, str]:
    """Every public output (OpenAPI GET routes, exports, snapshots, SSE, page) and the publisher database."""
    scanned: dict[str, str] = {}
    openapi = (await client.get("/openapi.json")).json()
    snapshot = (await client.get("/v1/public/exports/snapshots")).json()["snapshots"][0]
    params = {
        "recipient_id": [recipient_id],
        "need_id": [need_id],
        "snapshot_id": [snapshot["snapshot_id"]],
        "file_name": [f["name"] for f in snapshot["files"]],
        "dataset": ["recipients", "needs", "deliveries"],
        "fmt": ["csv", "json"],
    }
    for path, operations in openapi["paths"].items():
        if "get" not in operations or path.endswith("/feed/stream"):
            continue
        urls = [path]
        for name, values in params.items():
            if "{" + name + "}" in path:
                urls = [u.replace("{" + name + "}", v) for u in urls for v in values]
        assert all("{" not in u for u in urls), path
        for url in urls:
            for query in ("", "?lang=en", "?format=html"):
                response = await client.get(url + query, headers={"accept": "text/html,application/json"})
                assert response.status_code in (200, 422), (url, response.status_code)
                scanned[url + query] = response.text
    assert {"/", f"/v1/public/recipients/{recipient_id}", "/v1/public/exports/deliveries.csv"} <= set(scanned)
    async with client.stream("GET", "/v1/public/feed/stream", headers={"Last-Event-ID": "0"}) as stream:
        lines: list[str] = []
        async for line in stream.aiter_lines():
            lines.append(line)
            if line.startswith(": heartbeat"):
                break  # the replay is complete once the stream goes quiet
    scanned["sse"] = "\n".join(lines)
    for name in await db.list_collection_names():
        scanned[f"db:{name}"] = json_util.dumps([d async for d in db[name].find({})])
    assert len([k for k in scanned if k.startswith("db:")]) >= 5
    return scanned


async def test_no_public_output_contains_planted_contact_data(kit_env: dict[str, Any]) -> None:
    settings = PublisherSettings(**kit_env, sse_heartbeat_seconds=0.3)
    prefix, boot = settings.topic_prefix, settings.kafka_bootstrap
    app = create_app(settings)
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        await publish_events(boot, prefix, contact_events())
        await publish_events(
            boot,
            prefix,
            [
                organisation("org_p", "Yayasan Melayani"),
                recipient("rcp_p", "org_p", KEL, "RW 05 Pisangan Baru", households=25),
                need("need_p", "rcp_p", "org_p", KEL, quantity=25),
                # the donor did not opt in, although the profile carries a name: it must not appear
                donor("donor_p", "Siti Rahmawati", show=False),
                pledge("plg_p", "need_p", "rcp_p", "org_p", "donor_p", KEL, quantity=5, at=NOW + minutes(1)),
                ledger("need_p", "rcp_p", requested=25, delivered=5, version=2, at=NOW + minutes(30)),
                pledge(
                    "plg_p",
                    "need_p",
                    "rcp_p",
                    "org_p",
                    "donor_p",
                    KEL,
                    quantity=5,
                    version=3,
                    delivered=5,
                    at=NOW + minutes(30),
                ),
            ],
        )
        db = app.state.parts.db

        async def settled() -> bool:
            return (
                await db.feed.count_documents({}) == 2
                and await db.donors.count_documents({}) == 1
                and (await db.needs.find_one({"_id": "need_p", "ledger_version": 2})) is not None
            )

        await eventually(settled, within=40, interval=0.2, what="scenario projected")
        await app.state.parts.snapshots.take(app.state.parts.clock.now().replace(year=2030))

        # Positive control: the scanner finds the planted data where it really is (the confidential topics).
        async with TopicReader(
            boot, [prefix + REGISTRY_CONTACTS.name, prefix + DONOR_CONTACTS.name]
        ) as reader:
            await reader.wait_for(lambda envelopes: len(envelopes) >= 4)
            raw = "\n".join(r.value.decode() for r in reader.records if r.value)
        assert leaks(raw) == set(PLANTED_TEXT) | set(PLANTED_PHONES)

        scanned = await scan_publisher(client, db, "rcp_p", "need_p")
        assert "RW 05 Pisangan Baru" in scanned["/v1/public/recipients/rcp_p"]  # the public part is there
        assert "Kolaborator anonim" in scanned["sse"]
        hits = {where: sorted(found) for where, text in scanned.items() if (found := leaks(text))}
        assert hits == {}, json.dumps(hits, indent=1)


async def test_registry_flow_with_contacts_leaks_nothing_and_the_registry_admin_api_shows_them(
    kit_env: dict[str, Any],
    dev_issuer: Any,
) -> None:
    from ksbb_kit.testing.plugin import running
    from ksbb_registry.bootstrap import create_app as create_registry
    from ksbb_registry.settings import RegistrySettings

    settings = PublisherSettings(**kit_env, sse_heartbeat_seconds=0.3)
    admin = {"authorization": f"Bearer {dev_issuer.token('admin', subject='admin-privacy')}"}
    publisher = create_app(settings)
    async with (
        running(create_registry(RegistrySettings(**kit_env))) as registry,
        served(publisher) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):
        org = await registry.post(
            "/v1/organisations",
            headers=admin,
            json={
                "name": "Yayasan Privasi",
                "kind": "ngo",
                "area_codes": ["31.75"],
                "contact": {
                    "name": "Ani Wijaya",
                    "email": "ani.wijaya@yayasan.example",
                    "phone": "(021) 555-12345",
                },
            },
        )
        assert org.status_code == 201, org.text
        org_id = org.json()["organisation_id"]
        created = await registry.post(
            "/v1/recipients",
            headers=admin,
            json={
                "name": "RW 09 Utan Kayu",
                "kind": "rw_rentan",
                "organisation_id": org_id,
                "kelurahan_code": KEL,
                "rw": 9,
                "rt": 4,
                "street_address": "Jl. Melati No. 7, RT 04",
                "notes": "Catatan rahasia: hubungi BUDI SANTOSO di 0812-3456-7890",
                "beneficiaries": {"households": 30, "people": 120},
                "contact": {
                    "name": "Budi Santoso",
                    "phone": "+62 812 3456 7890",
                    "email": "budi.santoso@example.org",
                },
            },
        )
        assert created.status_code == 201, created.text
        rid = created.json()["recipient_id"]
        for action, body in (("verify", {"reason": "kunjungan, catatan rahasia"}), ("activate", {})):
            response = await registry.post(f"/v1/recipients/{rid}/{action}", headers=admin, json=body)
            assert response.status_code == 200, response.text
        need = await registry.post(
            f"/v1/recipients/{rid}/needs",
            headers=admin,
            json={
                "item": "sembako",
                "quantity": 30,
                "priority": "high",
                "needed_by": "2027-01-01",
                "recurrence": "none",
            },
        )
        assert need.status_code == 201, need.text
        need_id = need.json()["need_id"]
        # the pledges service is not part of this flow: its public events are injected as it would send them
        await publish_events(
            settings.kafka_bootstrap,
            settings.topic_prefix,
            [
                donor("donor_r", "Siti Rahmawati", show=False),
                pledge("plg_r", need_id, rid, org_id, "donor_r", KEL, quantity=5, at=NOW + minutes(1)),
            ],
        )
        db = publisher.state.parts.db

        async def settled() -> bool:
            return (
                await db.feed.count_documents({}) == 1
                and await db.recipients.count_documents({"status": "active"}) == 1
                and await db.needs.count_documents({"version": {"$exists": True}}) == 1
            )

        await eventually(settled, within=40, interval=0.2, what="registry events projected")
        await publisher.state.parts.snapshots.take(publisher.state.parts.clock.now().replace(year=2030))

        # Positive control: the registry's admin API returns the contact data; the scanner finds it there.
        control = "\n".join(
            [
                (await registry.get(f"/v1/recipients/{rid}", headers=admin)).text,
                (await registry.get(f"/v1/organisations/{org_id}", headers=admin)).text,
            ]
        )
        assert {
            "budi santoso",
            "budi.santoso@example.org",
            "jl. melati no. 7",
            "catatan rahasia",
            "ani wijaya",
            "81234567890",
            "2155512345",
        } <= leaks(control)

        scanned = await scan_publisher(client, db, rid, need_id)
        assert "RW 09 Utan Kayu" in scanned[f"/v1/public/recipients/{rid}"]
        hits = {where: sorted(found) for where, text in scanned.items() if (found := leaks(text))}
        assert hits == {}, json.dumps(hits, indent=1)
