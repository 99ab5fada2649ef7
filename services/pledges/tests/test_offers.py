"""Offers through HTTP and Kafka: proposals in the documented order, acceptance with re-matching, decline."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from ksbb_contracts.vocab import Item, Priority
from ksbb_kit.testing.kafka import TopicReader

pytestmark = pytest.mark.integration


def offer_body(service: Any, quantity: int, item: str, areas: list[str] | None = None) -> dict[str, Any]:
    return {
        "item": item,
        "quantity": quantity,
        "area_codes": areas or [],
        "available_until": (service.clock.now().date() + timedelta(days=10)).isoformat(),
    }


async def test_offer_is_split_and_accepted_with_rematch(service: Any) -> None:
    item = Item.MASKS
    urgent = await service.open_need("ned_urgent", quantity=5, item=item, priority=Priority.HIGH, recipient_id="rcp_o1")
    sooner = await service.open_need(
        "ned_sooner", quantity=10, item=item, needed_by=date(2026, 3, 10), recipient_id="rcp_o2"
    )
    later = await service.open_need(
        "ned_later",
        quantity=10,
        item=item,
        needed_by=date(2026, 3, 25),
        recipient_id="rcp_o3",
        kelurahan_code="31.72.01.1001",
    )
    donor = service.auth("donor", subject="donor-offer")
    async with TopicReader(service.infra.kafka_bootstrap, [service.namespace + "ksbb.pledges.offers"]) as reader:
        created = await service.client.post(
            "/v1/offers",
            headers={**donor, "Idempotency-Key": "offer-key-1"},
            json=offer_body(service, 12, item),
        )
        assert created.status_code == 201, created.text
        offer = created.json()
        assert [(p["need_id"], p["quantity"]) for p in offer["proposals"]] == [(urgent, 5), (sooner, 7)]
        replay = await service.client.post(
            "/v1/offers",
            headers={**donor, "Idempotency-Key": "offer-key-1"},
            json=offer_body(service, 12, item),
        )
        assert replay.json()["offer_id"] == offer["offer_id"]
        await reader.wait_for(
            lambda es: any(e.type == "ksbb.match.proposed.v1" and e.subject == offer["offer_id"] for e in es)
        )
        # Someone else fills the urgent need before the donor accepts.
        assert (await service.pledge(urgent, 5, donor="donor-fast")).status_code == 201
        other = await service.client.post(
            f"/v1/offers/{offer['offer_id']}/accept", headers=service.auth("donor", subject="donor-else")
        )
        assert other.status_code == 403
        accepted = await service.client.post(
            f"/v1/offers/{offer['offer_id']}/accept", headers=donor, json={"mode": "distribution_partner"}
        )
        assert accepted.status_code == 200, accepted.text
        result = accepted.json()
        assert result["status"] == "accepted"
        assert [d["need_id"] for d in result["dropped"]] == [urgent]
        assert len(result["pledge_ids"]) == 2
        await reader.wait_for(lambda es: any(e.type == "ksbb.match.accepted.v1" for e in es))
    assert (await service.ledger_or_none(sooner))["committed"] == 7
    assert (await service.ledger_or_none(later))["committed"] == 5  # the re-matched remainder
    again = await service.client.post(f"/v1/offers/{offer['offer_id']}/accept", headers=donor)
    assert again.status_code == 409
    mine = await service.client.get("/v1/pledges", headers=donor)
    assert {p["offer_id"] for p in mine.json()["items"]} == {offer["offer_id"]}


async def test_area_preference_and_decline(service: Any) -> None:
    item = Item.HYGIENE_KIT
    await service.open_need("ned_pusat", quantity=5, item=item)
    utara = await service.open_need("ned_utara", quantity=5, item=item, kelurahan_code="31.72.01.1001")
    donor = service.auth("donor", subject="donor-area")
    created = await service.client.post(
        "/v1/offers", headers=donor, json=offer_body(service, 20, item, areas=["31.72"])
    )
    offer = created.json()
    assert [(p["need_id"], p["quantity"]) for p in offer["proposals"]] == [(utara, 5)]
    declined = await service.client.post(f"/v1/offers/{offer['offer_id']}/decline", headers=donor)
    assert declined.json()["status"] == "declined"
    assert (await service.client.post(f"/v1/offers/{offer['offer_id']}/accept", headers=donor)).status_code == 409
    bad_area = await service.client.post(
        "/v1/offers", headers=donor, json=offer_body(service, 20, item, areas=["32.01"])
    )
    assert bad_area.status_code == 422 and bad_area.json()["field"].startswith("area_codes")
