"""Hostile and careless input at the registry's edge: dates within the horizon (PATCH like create), bounded and
consistent counts, strict numbers, schema and behaviour agreeing, and Idempotency-Keys under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from ksbb_contracts import limits
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_registry.domain.lifecycle import TRANSITIONS

from .conftest import Caller, need_payload, organisation_payload, recipient_payload

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(service_app: tuple[Any, httpx.AsyncClient], dev_issuer: DevIssuer) -> Caller:
    """An administrator."""
    return Caller(service_app[1], dev_issuer.token("admin", subject="admin-bounds"))


async def active_recipient(admin: Caller) -> str:
    """A new organisation and an active recipient of it; the recipient's id."""
    org = await admin.post("/v1/organisations", json=organisation_payload())
    assert org.status_code == 201, org.text
    created = await admin.post("/v1/recipients", json=recipient_payload(org.json()["organisation_id"]))
    assert created.status_code == 201, created.text
    rid = created.json()["recipient_id"]
    for action in ("verify", "activate"):
        moved = await admin.post(f"/v1/recipients/{rid}/{action}", json={"reason": "survei lapangan"})
        assert moved.status_code == 200, moved.text
    return str(rid)


def days_ahead(clock: ManualClock, days: int) -> str:
    """A date `days` after the service clock's today."""
    return (clock.now().date() + timedelta(days=days)).isoformat()


async def test_needed_by_must_lie_within_the_horizon_on_create_and_on_patch(
    admin: Caller, clock: ManualClock
) -> None:
    rid = await active_recipient(admin)
    too_far = await admin.post(
        f"/v1/recipients/{rid}/needs", json={**need_payload(), "needed_by": days_ahead(clock, limits.HORIZON_DAYS + 1)}
    )
    assert too_far.status_code == 422, too_far.text
    assert (too_far.json()["code"], too_far.json()["field"]) == ("needed_by_too_far", "needed_by")
    year_9999 = await admin.post(f"/v1/recipients/{rid}/needs", json={**need_payload(), "needed_by": "9999-12-31"})
    assert (year_9999.status_code, year_9999.json()["code"]) == (422, "needed_by_too_far")
    at_horizon = await admin.post(
        f"/v1/recipients/{rid}/needs", json={**need_payload(), "needed_by": days_ahead(clock, limits.HORIZON_DAYS)}
    )
    assert at_horizon.status_code == 201, at_horizon.text
    need_id = at_horizon.json()["need_id"]

    # PATCH obeys the same rules as create: not into the past, not beyond the horizon.
    past = await admin.patch(f"/v1/needs/{need_id}", json={"needed_by": days_ahead(clock, -1)})
    assert past.status_code == 422, past.text
    assert (past.json()["code"], past.json()["field"]) == ("needed_by_in_past", "needed_by")
    beyond = await admin.patch(f"/v1/needs/{need_id}", json={"needed_by": "9999-12-31"})
    assert (beyond.status_code, beyond.json()["code"]) == (422, "needed_by_too_far")
    today = await admin.patch(f"/v1/needs/{need_id}", json={"needed_by": days_ahead(clock, 0)})
    assert today.status_code == 200 and today.json()["needed_by"] == days_ahead(clock, 0)


async def test_a_patch_keeping_a_needed_by_that_has_since_passed_is_accepted(
    admin: Caller, clock: ManualClock
) -> None:
    rid = await active_recipient(admin)
    need = (await admin.post(f"/v1/recipients/{rid}/needs", json={**need_payload(), "needed_by": days_ahead(clock, 1)}))
    need_id, needed_by = need.json()["need_id"], need.json()["needed_by"]
    clock.advance(timedelta(days=3))
    try:
        changed = await admin.patch(f"/v1/needs/{need_id}", json={"needed_by": needed_by, "quantity": 12})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["quantity"], changed.json()["needed_by"]) == (12, needed_by)
    finally:
        clock.advance(timedelta(days=-3))


@pytest.mark.parametrize(
    ("counts", "field_hint"),
    [
        ({"households": 10, "people": 40, "children": 2**63}, "beneficiaries.children"),
        ({"households": 10, "people": 0, "elderly": 5}, "beneficiaries"),
        ({"households": 10, "people": 0, "children": 10**30}, "beneficiaries.children"),
        ({"households": 2**63, "people": 40}, "beneficiaries.households"),
        ({"households": 10, "people": 40, "disabled": 41}, "beneficiaries"),
        ({"households": 10, "people": "40"}, "beneficiaries.people"),
        ({"households": True, "people": 40}, "beneficiaries.households"),
    ],
)
async def test_beneficiary_counts_are_bounded_strict_and_consistent(
    admin: Caller, counts: dict[str, Any], field_hint: str
) -> None:
    org = (await admin.post("/v1/organisations", json=organisation_payload())).json()["organisation_id"]
    body = {**recipient_payload(org), "beneficiaries": counts}
    response = await admin.post("/v1/recipients", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert response.json()["field"].startswith(field_hint)


@pytest.mark.parametrize("quantity", ["5", True, 5.0, limits.QUANTITY[1] + 1, 2**64])
async def test_need_quantities_are_strict_json_numbers_within_the_maximum(admin: Caller, quantity: Any) -> None:
    rid = await active_recipient(admin)
    response = await admin.post(f"/v1/recipients/{rid}/needs", json={**need_payload(), "quantity": quantity})
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"]) == ("validation_error", "quantity")
    need_id = (await admin.post(f"/v1/recipients/{rid}/needs", json=need_payload())).json()["need_id"]
    patched = await admin.patch(f"/v1/needs/{need_id}", json={"quantity": quantity})
    assert (patched.status_code, patched.json()["field"]) == (422, "quantity")


async def test_strings_beyond_their_maximum_length_are_refused(admin: Caller) -> None:
    org = (await admin.post("/v1/organisations", json=organisation_payload())).json()["organisation_id"]
    for field, value in (
        ("kelurahan_code", "3" * (limits.AREA_CODE_MAX + 1)),
        ("organisation_id", "o" * (limits.ID[1] + 1)),
        ("notes", "n" * (limits.NOTES_MAX + 1)),
    ):
        response = await admin.post("/v1/recipients", json={**recipient_payload(org), field: value})
        assert (response.status_code, response.json()["field"]) == (422, field), response.text


async def test_transition_bodies_require_a_reason_exactly_where_the_rule_does(
    service_app: tuple[Any, httpx.AsyncClient], admin: Caller
) -> None:
    document = (await service_app[1].get("/openapi.json")).json()
    for action, rule in TRANSITIONS.items():
        operation = document["paths"][f"/v1/recipients/{{recipient_id}}/{action.value}"]["post"]
        reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
        assert ("reason" in schema.get("required", [])) is rule.reason_required, action
    # What the document says is what the service does: verify without a reason is a validation error.
    org = (await admin.post("/v1/organisations", json=organisation_payload())).json()["organisation_id"]
    rid = (await admin.post("/v1/recipients", json=recipient_payload(org))).json()["recipient_id"]
    for body in ({}, {"reason": "   "}):
        refused = await admin.post(f"/v1/recipients/{rid}/verify", json=body)
        assert (refused.status_code, refused.json()["field"]) == (422, "reason"), refused.text
    verified = await admin.post(f"/v1/recipients/{rid}/verify", json={"reason": "kunjungan"})
    assert verified.status_code == 200
    activated = await admin.post(f"/v1/recipients/{rid}/activate", json={})
    assert activated.status_code == 200, activated.text


async def test_the_openapi_document_shows_the_limits(service_app: tuple[Any, httpx.AsyncClient]) -> None:
    schemas = (await service_app[1].get("/openapi.json")).json()["components"]["schemas"]
    quantity = schemas["NeedCreate"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == limits.QUANTITY
    assert f"{limits.HORIZON_DAYS} days" in schemas["NeedCreate"]["properties"]["needed_by"]["description"]
    assert schemas["BeneficiaryCounts"]["properties"]["children"]["maximum"] == limits.PEOPLE_MAX
    assert schemas["RecipientCreate"]["properties"]["street_address"]["maxLength"] == limits.STREET_ADDRESS[1]


async def test_concurrent_creates_with_one_key_and_different_bodies_get_one_201_and_one_422(admin: Caller) -> None:
    rid = await active_recipient(admin)
    headers = {"Idempotency-Key": "concurrent-different"}
    first, second = await asyncio.gather(
        admin.post(f"/v1/recipients/{rid}/needs", json=need_payload(quantity=10), headers=headers),
        admin.post(f"/v1/recipients/{rid}/needs", json=need_payload(quantity=20), headers=headers),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 422], (first.text, second.text)
    refused = first if first.status_code == 422 else second
    assert (refused.json()["code"], refused.json()["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    listed = (await admin.get("/v1/needs", params={"recipient_id": rid})).json()["items"]
    assert len(listed) == 1


async def test_concurrent_creates_with_one_key_and_one_body_answer_the_same_and_create_once(admin: Caller) -> None:
    rid = await active_recipient(admin)
    headers = {"Idempotency-Key": "concurrent-same"}
    body = need_payload(quantity=7)
    responses = await asyncio.gather(
        *(admin.post(f"/v1/recipients/{rid}/needs", json=body, headers=headers) for _ in range(4))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert len({r.headers["ETag"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 3
    listed = (await admin.get("/v1/needs", params={"recipient_id": rid})).json()["items"]
    assert [n["quantity"] for n in listed] == [7]

