"""A donation's whole journey across registry, pledges and publisher, through HTTP and real Kafka only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest
from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.testing.plugin import running
from ksbb_pledges.bootstrap import create_app as pledges_app
from ksbb_pledges.settings import PledgesSettings
from ksbb_publisher.bootstrap import create_app as publisher_app
from ksbb_publisher.settings import PublisherSettings
from ksbb_registry.bootstrap import create_app as registry_app
from ksbb_registry.settings import RegistrySettings

pytestmark = pytest.mark.e2e
PHONE = "0812-7777-3141"


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60) -> Any:
    """Poll until events have propagated between services."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(0.2)


def bearer(issuer: DevIssuer, role: Role, **claims: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {issuer.token(role, **claims)}"}


async def test_pledge_to_delivery_reaches_registry_and_public_feed(
    kit_env: dict[str, Any], dev_issuer: DevIssuer
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        registry = await stack.enter_async_context(running(registry_app(RegistrySettings(**kit_env))))
        pledges = await stack.enter_async_context(running(pledges_app(PledgesSettings(**kit_env))))
        public = await stack.enter_async_context(running(publisher_app(PublisherSettings(**kit_env))))
        admin = bearer(dev_issuer, Role.ADMIN, subject="admin-1")

        org = await registry.post("/v1/organisations", headers={**admin, "Idempotency-Key": "org-1"}, json={
            "name": "Lembaga Peduli Gambir", "kind": "ngo", "area_codes": ["31.71"],
            "contact": {"name": "Sekretariat", "email": "sekretariat@peduli.example"},
        })
        assert org.status_code == 201, org.text
        org_id = org.json()["organisation_id"]
        staff = bearer(dev_issuer, Role.FACILITATOR, org_id=org_id, subject="staff-1")

        created = await registry.post("/v1/recipients", headers={**staff, "Idempotency-Key": "rcp-1"}, json={
            "name": "RW 03 Gambir", "kind": "rw_rentan", "kelurahan_code": "31.71.01.1001", "rw": 3,
            "street_address": "Jl. Kenari No. 5", "organisation_id": org_id,
            "beneficiaries": {"households": 120, "people": 480, "children": 100, "elderly": 40, "disabled": 5},
            "contact": {"name": "Ibu Sari Wulandari", "phone": PHONE},
        })
        assert created.status_code == 201, created.text
        recipient_id = created.json()["recipient_id"]
        for step in ("verify", "activate"):
            moved = await registry.post(f"/v1/recipients/{recipient_id}/{step}", headers=staff,
                                        json={"reason": "Survei lapangan"})
            assert moved.status_code == 200, moved.text
        need = await registry.post(f"/v1/recipients/{recipient_id}/needs", headers={**staff, "Idempotency-Key": "n1"},
                                   json={"item": "sembako", "quantity": 10, "priority": "high",
                                         "needed_by": (date.today() + timedelta(days=7)).isoformat()})
        assert need.status_code == 201, need.text
        need_id = need.json()["need_id"]

        # The pledges service learns about the need only from the registry's events.
        await eventually(lambda: _ok(pledges.get(f"/v1/needs/{need_id}/ledger")), "need reaches the pledge ledger")
        donor = bearer(dev_issuer, Role.DONOR, subject="donor-berkah")
        profile = await pledges.put("/v1/donors/me", headers=donor, json={
            "kind": "company", "display_name": "PT Sumber Berkah", "show_name": True})
        assert profile.status_code == 200, profile.text
        pledge = await pledges.post("/v1/pledges", headers={**donor, "Idempotency-Key": "pledge-key-0001"}, json={
            "need_id": need_id, "quantity": 10, "planned_date": (date.today() + timedelta(days=1)).isoformat()})
        assert pledge.status_code == 201, pledge.text
        pledge_id = pledge.json()["pledge_id"]
        too_much = await pledges.post("/v1/pledges", headers=donor, json={
            "need_id": need_id, "quantity": 1, "planned_date": (date.today() + timedelta(days=1)).isoformat()})
        assert too_much.status_code == 409, "the need is fully committed"

        contact = await pledges.get(f"/v1/pledges/{pledge_id}/recipient-contact", headers=donor)
        assert contact.status_code == 200 and "7777" in contact.text, "the donor may call the location (2x24h rule)"
        assert (await pledges.post(f"/v1/pledges/{pledge_id}/confirm", headers=staff)).status_code == 200
        assert (await pledges.post(f"/v1/pledges/{pledge_id}/dispatch", headers=donor)).status_code == 200
        delivered = await pledges.post(f"/v1/pledges/{pledge_id}/deliver", headers=staff,
                                       json={"received_quantity": 10, "proof_ref": "foto-serah-terima-1"})
        assert delivered.status_code == 200, delivered.text

        # The registry marks the need fulfilled from the pledges service's ledger events.
        async def fulfilled() -> bool:
            response = await registry.get(f"/v1/needs/{need_id}", headers=staff)
            return response.status_code == 200 and response.json()["status"] == "fulfilled"

        await eventually(fulfilled, "need fulfilled in the registry")

        # The public sees progress and the donor who opted in — never the contact person.
        async def public_progress() -> Any:
            response = await public.get(f"/v1/public/needs/{need_id}")
            return response.status_code == 200 and response.json()["progress"]["delivered"] == 10 and response.json()

        shown = await eventually(public_progress, "delivery visible on the public need")
        assert shown["progress"]["requested"] == 10
        feed = await eventually(lambda: _feed_with(public, pledge_id, "delivered"), "delivery in the public feed")
        assert {e["donor_name"] for e in feed} == {"PT Sumber Berkah"}
        page = await public.get("/", params={"kelurahan": "31.71.01.1001"})
        assert "RW 03 Gambir" in page.text
        for text in (page.text, (await public.get(f"/v1/public/recipients/{recipient_id}")).text):
            assert "7777" not in text and "Sari Wulandari" not in text


async def _ok(request: Awaitable[Any]) -> bool:
    return (await request).status_code == 200


async def _feed_with(public: Any, pledge_id: str, kind: str) -> list[dict[str, Any]] | None:
    items = (await public.get("/v1/public/feed")).json()["items"]
    mine = [e for e in items if e["pledge_id"] == pledge_id]
    return mine if any(e["kind"] == kind for e in mine) else None
