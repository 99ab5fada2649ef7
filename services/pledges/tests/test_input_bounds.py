"""Hostile and careless input at the pledges service's edge: strict numbers, dates within the horizon (a pledge
planned for 9999-12-31 once stopped every sweep), validated cursors, and one Idempotency-Key under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from ksbb_contracts import limits

pytestmark = pytest.mark.integration


def pledge_body(need_id: str, service: Any, **changes: Any) -> dict[str, Any]:
    """A valid pledge body with some fields changed."""
    planned = (service.clock.now().date() + timedelta(days=2)).isoformat()
    return {"need_id": need_id, "quantity": 1, "planned_date": planned, "mode": "own_delivery", **changes}


@pytest.mark.parametrize("quantity", ["5", True, 2.0, limits.QUANTITY[1] + 1, 2**63])
async def test_pledge_quantities_are_strict_json_numbers_within_the_maximum(service: Any, quantity: Any) -> None:
    need_id = await service.open_need(quantity=10)
    response = await service.client.post(
        "/v1/pledges", json=pledge_body(need_id, service, quantity=quantity), headers=service.auth("donor")
    )
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"]) == ("validation_error", "quantity")
    assert (await service.ledger_or_none(need_id))["committed"] == 0


async def test_a_delivery_is_planned_within_the_horizon(service: Any) -> None:
    need_id = await service.open_need(quantity=10)
    donor = service.auth("donor", subject="donor-horizon")
    today = service.clock.now().date()
    for planned in ("9999-12-31", (today + timedelta(days=limits.HORIZON_DAYS + 1)).isoformat()):
        refused = await service.client.post(
            "/v1/pledges", json=pledge_body(need_id, service, planned_date=planned), headers=donor
        )
        assert refused.status_code == 422, refused.text
        assert (refused.json()["code"], refused.json()["field"]) == ("planned_date_too_far", "planned_date")
    at_horizon = (today + timedelta(days=limits.HORIZON_DAYS)).isoformat()
    accepted = await service.client.post(
        "/v1/pledges", json=pledge_body(need_id, service, planned_date=at_horizon), headers=donor
    )
    assert accepted.status_code == 201, accepted.text
    # Every sweep still runs with the furthest pledge in place.
    service.clock.advance(timedelta(days=3))
    try:
        await service.parts.ledger.sweep()
    finally:
        service.clock.advance(timedelta(days=-3))


async def test_offers_end_within_the_horizon_and_acceptance_plans_within_it(service: Any) -> None:
    await service.open_need(quantity=10)
    donor = service.auth("donor", subject="donor-offer-horizon")
    today = service.clock.now().date()
    far = await service.client.post(
        "/v1/offers",
        json={"item": "sembako", "quantity": 2, "available_until": "9999-12-31"},
        headers=donor,
    )
    assert (far.status_code, far.json()["code"], far.json()["field"]) == (
        422,
        "available_until_too_far",
        "available_until",
    )
    offer = await service.client.post(
        "/v1/offers",
        json={"item": "sembako", "quantity": 2, "available_until": (today + timedelta(days=5)).isoformat()},
        headers=donor,
    )
    assert offer.status_code == 201, offer.text
    accepted = await service.client.post(
        f"/v1/offers/{offer.json()['offer_id']}/accept", json={"planned_date": "9999-12-31"}, headers=donor
    )
    assert (accepted.status_code, accepted.json()["field"]) == (422, "planned_date"), accepted.text


async def test_booleans_are_json_booleans(service: Any) -> None:
    response = await service.client.put(
        "/v1/donors/me",
        json={"kind": "person", "display_name": "Andi", "show_name": "true"},
        headers=service.auth("donor", subject="donor-strict"),
    )
    assert (response.status_code, response.json()["field"]) == (422, "show_name"), response.text


@pytest.mark.parametrize("path", ["/v1/pledges", "/v1/offers", "/v1/recipients/rcp_a/pledges"])
@pytest.mark.parametrize("cursor", ["abc", "plg_zzzz", "WzEsMl0", "x" * 600])
async def test_every_list_refuses_a_cursor_it_did_not_hand_out(service: Any, path: str, cursor: str) -> None:
    response = await service.client.get(path, params={"cursor": cursor}, headers=service.auth("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "cursor"
    assert response.json()["code"] in ("invalid_cursor", "validation_error")


async def test_cursors_handed_out_page_through_every_pledge_once(service: Any) -> None:
    need_id = await service.open_need(quantity=10)
    for _ in range(3):
        assert (await service.pledge(need_id, 1, donor="donor-pages")).status_code == 201
    donor = service.auth("donor", subject="donor-pages")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await service.client.get("/v1/pledges", params=params, headers=donor)).json()
        seen += [p["pledge_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3 == len(set(seen))


async def test_one_key_for_two_concurrent_pledges_on_different_needs_reserves_once(service: Any) -> None:
    first_need, second_need = await service.open_need(quantity=10), await service.open_need(quantity=10)
    donor = {**service.auth("donor", subject="donor-race-key"), "Idempotency-Key": "same-key-two-needs"}
    responses = await asyncio.gather(
        service.client.post("/v1/pledges", json=pledge_body(first_need, service), headers=donor),
        service.client.post("/v1/pledges", json=pledge_body(second_need, service), headers=donor),
    )
    assert sorted(r.status_code for r in responses) == [201, 422], [r.text for r in responses]
    committed = [(await service.ledger_or_none(n))["committed"] for n in (first_need, second_need)]
    assert sorted(committed) == [0, 1]
