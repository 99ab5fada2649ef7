"""A donation's whole journey across registry, pledges and publisher: through the gateway only, real Kafka.

The test talks to one URL — the nginx gateway — exactly like a browser app would; it never sees a
service's own port. The live feed is followed over SSE through the same gateway, and the request id of
the delivery is followed across services into the event the registry emits in reaction to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from ksbb_gateway.testing import platform
from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.testing.kafka import TopicReader
from ksbb_kit.testing.waiting import eventually
from ksbb_kit.tracing import new_traceparent, trace_id

pytestmark = pytest.mark.e2e
PHONE = "0812-7777-3141"


def bearer(issuer: DevIssuer, role: Role, **claims: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {issuer.token(role, **claims)}"}


async def follow_stream(client: httpx.AsyncClient, frames: list[dict[str, Any]], opened: asyncio.Event) -> None:
    """Collect the live feed's `feed` events (SSE through the gateway) until cancelled."""
    async with client.stream("GET", "/v1/public/feed/stream", timeout=httpx.Timeout(10, read=None)) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        opened.set()
        event = None
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event == "feed":
                frames.append(json.loads(line.removeprefix("data:").strip()))


async def test_pledge_to_delivery_reaches_registry_and_public_feed_through_the_gateway(
    kit_env: dict[str, Any], dev_issuer: DevIssuer, documents: dict[str, dict[str, Any]]
) -> None:
    services = ("registry", "pledges", "publisher")
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(platform(
            kit_env, documents, services=services,
            service_overrides={"publisher": {"sse_heartbeat_seconds": 1, "feed_poll_seconds": 0.5}}))
        api = await stack.enter_async_context(httpx.AsyncClient(base_url=running.url, timeout=30))
        needs_topic = f"{kit_env['topic_prefix']}ksbb.registry.needs"
        registry_events = await stack.enter_async_context(TopicReader(kit_env["kafka_bootstrap"], [needs_topic]))
        admin = bearer(dev_issuer, Role.ADMIN, subject="admin-1")

        org = await api.post("/v1/organisations", headers={**admin, "Idempotency-Key": "org-1"}, json={
            "name": "Lembaga Peduli Gambir", "kind": "ngo", "area_codes": ["31.71"],
            "contact": {"name": "Sekretariat", "email": "sekretariat@peduli.example"},
        })
        assert org.status_code == 201, org.text
        org_id = org.json()["organisation_id"]
        staff = bearer(dev_issuer, Role.FACILITATOR, org_id=org_id, subject="staff-1")

        created = await api.post("/v1/recipients", headers={**staff, "Idempotency-Key": "rcp-1"}, json={
            "name": "RW 03 Gambir", "kind": "rw_rentan", "kelurahan_code": "31.71.01.1001", "rw": 3,
            "street_address": "Jl. Kenari No. 5", "organisation_id": org_id,
            "beneficiaries": {"households": 120, "people": 480, "children": 100, "elderly": 40, "disabled": 5},
            "contact": {"name": "Ibu Sari Wulandari", "phone": PHONE},
        })
        assert created.status_code == 201, created.text
        recipient_id = created.json()["recipient_id"]
        for step in ("verify", "activate"):
            moved = await api.post(f"/v1/recipients/{recipient_id}/{step}", headers=staff,
                                   json={"reason": "Survei lapangan"})
            assert moved.status_code == 200, moved.text
        need = await api.post(f"/v1/recipients/{recipient_id}/needs", headers={**staff, "Idempotency-Key": "n1"},
                              json={"item": "sembako", "quantity": 10, "priority": "high",
                                    "needed_by": (date.today() + timedelta(days=7)).isoformat()})
        assert need.status_code == 201, need.text
        need_id = need.json()["need_id"]

        # /v1/needs/{id} belongs to the registry, /v1/needs/{id}/ledger to pledges: one path space.
        async def ledger_open() -> bool:
            return (await api.get(f"/v1/needs/{need_id}/ledger")).status_code == 200

        await eventually(ledger_open, within=60, what="the need reaches the pledge ledger")

        frames: list[dict[str, Any]] = []
        opened = asyncio.Event()
        live = asyncio.create_task(follow_stream(api, frames, opened))
        await asyncio.wait_for(opened.wait(), timeout=30)

        donor = bearer(dev_issuer, Role.DONOR, subject="donor-berkah")
        profile = await api.put("/v1/donors/me", headers=donor, json={
            "kind": "company", "display_name": "PT Sumber Berkah", "show_name": True})
        assert profile.status_code == 200, profile.text
        pledge = await api.post("/v1/pledges", headers={**donor, "Idempotency-Key": "pledge-key-0001"}, json={
            "need_id": need_id, "quantity": 10, "planned_date": (date.today() + timedelta(days=1)).isoformat()})
        assert pledge.status_code == 201, pledge.text
        pledge_id = pledge.json()["pledge_id"]
        too_much = await api.post("/v1/pledges", headers=donor, json={
            "need_id": need_id, "quantity": 1, "planned_date": (date.today() + timedelta(days=1)).isoformat()})
        assert too_much.status_code == 409, "the need is fully committed"

        contact = await api.get(f"/v1/pledges/{pledge_id}/recipient-contact", headers=donor)
        assert contact.status_code == 200 and "7777" in contact.text, "the donor may call the location (2x24h rule)"
        assert (await api.post(f"/v1/pledges/{pledge_id}/confirm", headers=staff)).status_code == 200
        assert (await api.post(f"/v1/pledges/{pledge_id}/dispatch", headers=donor)).status_code == 200
        delivery_request = f"deliver-{uuid.uuid4().hex}"
        delivery_trace = new_traceparent()
        delivered = await api.post(
            f"/v1/pledges/{pledge_id}/deliver", json={"received_quantity": 10, "proof_ref": "foto-serah-terima-1"},
            headers={**staff, "x-request-id": delivery_request, "traceparent": delivery_trace})
        assert delivered.status_code == 200, delivered.text

        # The registry marks the need fulfilled from the pledges service's ledger events.
        async def fulfilled() -> bool:
            response = await api.get(f"/v1/needs/{need_id}", headers=staff)
            return response.status_code == 200 and response.json()["status"] == "fulfilled"

        await eventually(fulfilled, within=60, what="need fulfilled in the registry")
        # ... and the event it emitted carries the request id and trace of the delivery that caused it.
        envelopes = await registry_events.wait_for(
            lambda found: any(e.subject == need_id and e.type.endswith(".fulfilled.v1") for e in found), timeout=60)
        (fulfilment,) = [e for e in envelopes if e.subject == need_id and e.type.endswith(".fulfilled.v1")]
        assert (fulfilment.model_extra or {}).get("requestid") == delivery_request
        assert trace_id(fulfilment.traceparent) == trace_id(delivery_trace)

        # The public sees progress and the donor who opted in — never the contact person.
        async def public_progress() -> Any:
            response = await api.get(f"/v1/public/needs/{need_id}")
            return response.status_code == 200 and response.json()["progress"]["delivered"] == 10 and response.json()

        shown = await eventually(public_progress, within=60, what="delivery visible on the public need")
        assert shown["progress"]["requested"] == 10

        async def feed_with_delivery() -> list[dict[str, Any]] | None:
            items = (await api.get("/v1/public/feed")).json()["items"]
            mine = [e for e in items if e["pledge_id"] == pledge_id]
            return mine if any(e["kind"] == "delivered" for e in mine) else None

        feed = await eventually(feed_with_delivery, within=60, what="delivery in the public feed")
        assert {e["donor_name"] for e in feed} == {"PT Sumber Berkah"}
        await eventually(lambda: any(f["pledge_id"] == pledge_id and f["kind"] == "delivered" for f in frames),
                         within=60, what="the delivery on the live stream through the gateway")
        live.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live

        page = await api.get("/", params={"kelurahan": "31.71.01.1001"})
        assert "RW 03 Gambir" in page.text
        for text in (page.text, (await api.get(f"/v1/public/recipients/{recipient_id}")).text):
            # The phone's digits in any spelling (not a bare "7777", which a timestamp's microseconds can hold).
            assert "7777-3141" not in text and "77773141" not in text and "Sari Wulandari" not in text
        # Nothing internal is reachable through the one URL the journey used.
        assert (await api.get("/metrics")).status_code == 404
