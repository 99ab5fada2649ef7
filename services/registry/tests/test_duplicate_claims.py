"""Integration: duplicate detection is race-free (claims with unique ids), survives crashes, follows updates."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.waiting import eventually
from ksbb_registry.adapters.claims import BACKFILL_MARKER, ClaimStore, is_confirmed
from ksbb_registry.api.deps import Services
from ksbb_registry.settings import RegistrySettings

from .conftest import Caller, organisation_payload, recipient_payload

pytestmark = pytest.mark.integration

CONCURRENT = 20


@pytest.fixture
def admin(service_app: tuple[Any, httpx.AsyncClient], dev_issuer: DevIssuer) -> Caller:
    """An administrator."""
    return Caller(service_app[1], dev_issuer.token("admin", subject="admin-dup"))


@pytest.fixture
def claims(registry_db: Any) -> Any:
    """The service's `recipient_claims` collection."""
    return registry_db["recipient_claims"]


async def new_org(admin: Caller) -> str:
    """Register an organisation and return its id."""
    response = await admin.post("/v1/organisations", json=organisation_payload())
    assert response.status_code == 201, response.text
    return response.json()["organisation_id"]


async def register_all(caller: Caller, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body at once, each with its own Idempotency-Key."""
    return await asyncio.gather(
        *(
            caller.post("/v1/recipients", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
            for body in bodies
        )
    )


async def count_recipients(admin: Caller, org_id: str) -> int:
    """How many recipients the organisation has."""
    listed = await admin.get("/v1/recipients", params={"organisation_id": org_id, "limit": 200})
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


def assert_one_winner(responses: list[httpx.Response]) -> str:
    """Exactly one 201; every other answer is a 409 naming the winner. Returns the winner's id."""
    assert Counter(r.status_code for r in responses) == {201: 1, 409: CONCURRENT - 1}, [
        (r.status_code, r.text[:120]) for r in responses
    ]
    winner = next(r for r in responses if r.status_code == 201).json()["recipient_id"]
    refusals = [r.json() for r in responses if r.status_code == 409]
    assert {r["code"] for r in refusals} == {"duplicate_recipient"}
    assert {r["details"]["existing_recipient_id"] for r in refusals} == {winner}
    return winner


async def test_concurrent_registrations_of_one_rw_let_exactly_one_through(
    admin: Caller, service_app: tuple[Any, httpx.AsyncClient], dev_issuer: DevIssuer, claims: Any
) -> None:
    org_id = await new_org(admin)
    facilitator = Caller(service_app[1], dev_issuer.token("facilitator", org_id=org_id))
    # Different names and addresses: only the kelurahan + RW makes them duplicates.
    bodies = [recipient_payload(org_id, kelurahan="31.74.01.1001", rw=11) for _ in range(CONCURRENT)]
    responses = await register_all(facilitator, bodies)
    winner = assert_one_winner(responses)
    assert {r.json()["field"] for r in responses if r.status_code == 409} == {"rw"}
    assert await count_recipients(admin, org_id) == 1
    claim = await claims.find_one({"_id": "rw:31.74.01.1001/11"})
    assert claim is not None and claim["recipient_id"] == winner

    async def confirmed() -> bool:  # the confirmation follows the answer
        return is_confirmed(await claims.find_one({"_id": "rw:31.74.01.1001/11"}))

    await eventually(confirmed, within=10, what="the winner's claim confirmed")
    # The losers released the name claims they had taken before losing the RW claim.
    assert await claims.count_documents({"recipient_id": {"$ne": winner}, "_id": {"$regex": "^name:"}}) == 0


async def test_concurrent_registrations_with_the_same_name_and_address_let_exactly_one_through(
    admin: Caller,
) -> None:
    org_id = await new_org(admin)
    base = recipient_payload(org_id, kind="panti_asuhan", rw=None, name=f"Panti Werdha Kasih {uuid.uuid4().hex[:6]}")
    # Spelling variants normalise to the same name + street address.
    variants = [
        {**base, "street_address": "Jl. Melati No. 9"},
        {**base, "name": base["name"].upper(), "street_address": "JALAN MELATI NOMOR 9"},
        {**base, "name": base["name"].replace(" ", "  "), "street_address": "jln melati no 9"},
    ]
    bodies = [variants[i % len(variants)] for i in range(CONCURRENT)]
    winner = assert_one_winner(await register_all(admin, bodies))
    assert await count_recipients(admin, org_id) == 1
    refused = await admin.post("/v1/recipients", json=bodies[1])
    assert refused.status_code == 409 and refused.json()["field"] == "name"
    assert refused.json()["details"]["existing_recipient_id"] == winner


async def test_a_claim_left_by_a_crashed_create_is_taken_over(
    admin: Caller, claims: Any, clock: ManualClock, services: Services
) -> None:
    org_id = await new_org(admin)
    # Crashed long ago between its claim and its insert: the next registration takes the claim over.
    await claims.insert_one(
        {
            "_id": "rw:31.74.02.1001/3",
            "recipient_id": "rcp_crashed_long_ago",
            "claimed_at": clock.now() - timedelta(hours=1),
            "confirmed": False,
        }
    )
    created = await admin.post("/v1/recipients", json=recipient_payload(org_id, kelurahan="31.74.02.1001", rw=3))
    assert created.status_code == 201, created.text
    rid = created.json()["recipient_id"]
    assert (await claims.find_one({"_id": "rw:31.74.02.1001/3"}))["recipient_id"] == rid

    # A fresh claim without its recipient may be a create still under way: refused until the grace
    # period is over, then the sweep removes it and the unit can be registered.
    await claims.insert_one(
        {"_id": "rw:31.74.02.1001/4", "recipient_id": "rcp_in_flight", "claimed_at": clock.now(), "confirmed": False}
    )
    body = recipient_payload(org_id, kelurahan="31.74.02.1001", rw=4)
    pending = await admin.post("/v1/recipients", json=body)
    assert pending.status_code == 409 and pending.json()["details"]["existing_recipient_id"] == "rcp_in_flight"
    clock.advance(timedelta(minutes=5))
    assert await services.recipients.sweep_claims() == 1
    assert await claims.find_one({"_id": "rw:31.74.02.1001/4"}) is None
    assert (await admin.post("/v1/recipients", json=body)).status_code == 201


async def test_updates_move_claims_and_archive_frees_them(admin: Caller, claims: Any) -> None:
    org_id = await new_org(admin)
    place = {"kelurahan": "31.74.03.1001"}
    first = (await admin.post("/v1/recipients", json=recipient_payload(org_id, **place, rw=1))).json()
    second = (await admin.post("/v1/recipients", json=recipient_payload(org_id, **place, rw=2))).json()
    clash = await admin.patch(f"/v1/recipients/{second['recipient_id']}", json={"rw": 1})
    assert clash.status_code == 409 and clash.json()["details"]["existing_recipient_id"] == first["recipient_id"]
    assert (await claims.find_one({"_id": "rw:31.74.03.1001/2"}))["recipient_id"] == second["recipient_id"]

    moved = await admin.patch(f"/v1/recipients/{second['recipient_id']}", json={"rw": 3})
    assert moved.status_code == 200, moved.text
    assert await claims.find_one({"_id": "rw:31.74.03.1001/2"}) is None  # old key released
    taken = await admin.post("/v1/recipients", json=recipient_payload(org_id, kelurahan="31.74.03.1001", rw=3))
    assert taken.status_code == 409 and taken.json()["details"]["existing_recipient_id"] == second["recipient_id"]
    assert (
        await admin.post("/v1/recipients", json=recipient_payload(org_id, kelurahan="31.74.03.1001", rw=2))
    ).status_code == 201

    # Admin override registers without the contested key; archiving the holder hands the key to it.
    override_body = {
        **recipient_payload(org_id, kelurahan="31.74.03.1001", rw=1),
        "duplicate_override_reason": "RW dimekarkan",
    }
    override = await admin.post("/v1/recipients", json=override_body)
    assert override.status_code == 201, override.text
    assert (await claims.find_one({"_id": "rw:31.74.03.1001/1"}))["recipient_id"] == first["recipient_id"]
    archived = await admin.post(f"/v1/recipients/{first['recipient_id']}/archive", json={"reason": "digabung"})
    assert archived.status_code == 200, archived.text
    heir = override.json()["recipient_id"]
    assert (await claims.find_one({"_id": "rw:31.74.03.1001/1"}))["recipient_id"] == heir
    again = await admin.post("/v1/recipients", json=recipient_payload(org_id, kelurahan="31.74.03.1001", rw=1))
    assert again.status_code == 409 and again.json()["details"]["existing_recipient_id"] == heir


async def test_recipients_registered_before_claims_existed_get_them_at_startup(
    admin: Caller, claims: Any, registry_db: Any, clock: ManualClock
) -> None:
    org_id = await new_org(admin)
    body = recipient_payload(org_id, kelurahan="31.74.04.1001", rw=5)
    rid = (await admin.post("/v1/recipients", json=body)).json()["recipient_id"]
    # Simulate data written by the old read-then-insert code: no claims, no backfill marker.
    await claims.delete_many({"$or": [{"recipient_id": rid}, {"_id": BACKFILL_MARKER}]})
    store = ClaimStore(registry_db, clock, timedelta(seconds=RegistrySettings().claim_grace_seconds))
    assert await store.backfill() >= 2
    assert await store.backfill() == 0  # once per database
    again = await admin.post("/v1/recipients", json=recipient_payload(org_id, kelurahan="31.74.04.1001", rw=5))
    assert again.status_code == 409 and again.json()["details"]["existing_recipient_id"] == rid
