"""`make run`'s demo seed drives the real service through its API: donors, pledges in each state, an offer."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from ksbb_contracts.vocab import Item
from ksbb_kit.demo import DemoContext
from ksbb_pledges.demo import seed

pytestmark = pytest.mark.integration


class InProcessDemo(DemoContext):
    """A demo context whose clients talk to the in-process app instead of a port."""

    app: Any = None

    def client(self, service: str, role: Any = None, **claims: Any) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {self.token(role, **claims)}"} if role else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://pledges",
            headers=headers,
            timeout=30,
        )


async def test_seed_creates_every_reachable_state_and_is_rerunnable(service: Any) -> None:
    needs = []
    for index in range(4):
        need_id = await service.open_need(
            f"ned_demo_{index}",
            quantity=40,
            item=Item.SEMBAKO,
            recipient_id=f"rcp_demo_{index}",
            organisation_id="org_demo",
        )
        needs.append({"need_id": need_id, "recipient_id": f"rcp_demo_{index}", "organisation_id": "org_demo"})
    ctx = InProcessDemo(
        urls={"pledges": "http://pledges"}, issuer=service.issuer, state={"registry": {"need_details": needs}}
    )
    ctx.app = service.app
    admin = service.auth("admin")

    async def demo_pledges() -> list[dict[str, Any]]:
        items = (await service.client.get("/v1/pledges", headers=admin, params={"limit": 200})).json()["items"]
        return [p for p in items if p["need_id"].startswith("ned_demo_")]

    await seed(ctx)
    first = await demo_pledges()
    await seed(ctx)  # a second `make run` must not duplicate anything
    pledges = await demo_pledges()
    assert sorted(p["pledge_id"] for p in pledges) == sorted(p["pledge_id"] for p in first)
    states = Counter(p["status"] for p in pledges)
    assert set(states) >= {"pledged", "confirmed", "dispatched", "delivered", "cancelled", "rejected"}
    assert any(p["delivered_quantity"] is not None and p["delivered_quantity"] < p["quantity"] for p in pledges)
    offers = (await service.client.get("/v1/offers", headers=admin)).json()["items"]
    demo_offer = [o for o in offers if o["offer_id"] in ctx.state["pledges"]["offers"]]
    assert demo_offer and demo_offer[0]["status"] == "accepted" and demo_offer[0]["pledge_ids"]


async def test_seed_skips_without_registry_state(service: Any) -> None:
    ctx = InProcessDemo(urls={"pledges": "http://pledges"}, issuer=service.issuer)
    ctx.app = service.app
    await seed(ctx)
    assert ctx.state["pledges"] == {"pledges": [], "donors": [], "offers": []}
