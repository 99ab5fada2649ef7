"""`make run`'s demo seed drives the real service through its API: spread-out pledges in every state, an offer."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from ksbb_contracts.areas import areas
from ksbb_contracts.events.registry import NeedOpened
from ksbb_contracts.vocab import Item
from ksbb_kit.demo import DemoContext
from ksbb_pledges.demo import seed

pytestmark = pytest.mark.integration

EVERY_STATE = {"pledged", "confirmed", "dispatched", "delivered", "delivered_partial", "cancelled", "rejected"}


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


def demo_needs(count: int) -> list[dict[str, Any]]:
    """Needs as the registry seed describes them: spread over every kota, several kecamatan and organisations."""
    directory = areas()
    kelurahan = [
        child
        for kota in directory.children(directory.province.code)
        for kecamatan in directory.children(kota.code)[:3]
        for child in directory.children(kecamatan.code)[:2]
    ]
    return [
        {
            "need_id": f"ned_demo_{index}",
            "recipient_id": f"rcp_demo_{index}",
            "organisation_id": f"org_demo_{index % 4}",
            "kelurahan_code": kelurahan[(index * 7) % len(kelurahan)].code,
            "quantity": 20 + (index * 13) % 60,
            "item": Item.SEMBAKO.value,
        }
        for index in range(count)
    ]


def final_state(pledge: dict[str, Any]) -> str:
    """A pledge's status, a partial delivery told apart."""
    partial = pledge["status"] == "delivered" and pledge["delivered_quantity"] < pledge["quantity"]
    return "delivered_partial" if partial else pledge["status"]


async def test_seed_spreads_pledges_over_areas_in_every_state_and_is_rerunnable(service: Any) -> None:
    needs = demo_needs(30)
    await service.publish(
        *(
            NeedOpened(
                need=service.need(
                    n["need_id"],
                    quantity=n["quantity"],
                    recipient_id=n["recipient_id"],
                    organisation_id=n["organisation_id"],
                    kelurahan_code=n["kelurahan_code"],
                ),
                occurred_at=service.clock.now(),
            )
            for n in needs
        )
    )
    ctx = InProcessDemo(
        urls={"pledges": "http://pledges"}, issuer=service.issuer, state={"registry": {"need_details": needs}}
    )
    ctx.app = service.app
    admin = service.auth("admin")

    async def demo_pledges() -> list[dict[str, Any]]:
        items = (await service.client.get("/v1/pledges", headers=admin, params={"limit": 200})).json()["items"]
        return [p for p in items if p["need_id"].startswith("ned_demo_")]

    await seed(ctx)  # waits itself until the ledgers know the published needs
    first = await demo_pledges()
    await seed(ctx)  # a second `make run` must not duplicate anything
    pledges = await demo_pledges()
    assert sorted(p["pledge_id"] for p in pledges) == sorted(p["pledge_id"] for p in first)
    assert sorted(p["pledge_id"] for p in pledges) == sorted(ctx.state["pledges"]["pledges"])

    states = Counter(final_state(p) for p in pledges)
    assert set(states) >= EVERY_STATE
    seeded = ctx.state["pledges"]["counts"]
    assert set(seeded) >= EVERY_STATE
    assert seeded["delivered"] == max(seeded.values())  # most pledges end delivered

    by_need = {n["need_id"]: n for n in needs}
    kota = {areas().kota_of(by_need[p["need_id"]]["kelurahan_code"]).code for p in pledges}
    kecamatan = {areas().kecamatan_of(by_need[p["need_id"]]["kelurahan_code"]).code for p in pledges}
    assert len(kota) >= 5 and len(kecamatan) >= 6
    assert ctx.state["pledges"]["kota"] >= 5
    untouched = set(by_need) - {p["need_id"] for p in pledges}
    assert len(untouched) >= 0.3 * len(needs)  # coverage gaps stay visible
    assert len({p["donor_id"] for p in pledges}) >= 5

    # Confirmations come from the facilitators of the need's own organisation (real scoped tokens).
    confirmers = {(p["organisation_id"], h["by"]) for p in pledges for h in p["history"] if h["status"] == "confirmed"}
    assert confirmers and all(by == f"facilitator:{org}" for org, by in confirmers)
    offers = (await service.client.get("/v1/offers", headers=admin)).json()["items"]
    demo_offer = [o for o in offers if o["offer_id"] in ctx.state["pledges"]["offers"]]
    assert demo_offer and demo_offer[0]["status"] == "accepted" and demo_offer[0]["pledge_ids"]


async def test_seed_skips_without_registry_state(service: Any) -> None:
    ctx = InProcessDemo(urls={"pledges": "http://pledges"}, issuer=service.issuer)
    ctx.app = service.app
    await seed(ctx)
    found = ctx.state["pledges"]
    assert (found["pledges"], found["donors"], found["offers"], found["counts"]) == ([], [], [], {})
