"""Bounded ledgers on the real database: settled pledges leave the ledger document for their copies, every read
still finds them, interrupted moves finish, old ledgers are compacted, and the live-pledge limit answers 409."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_pledges.domain.bounds import MAX_LIVE_PLEDGES

pytestmark = pytest.mark.integration


#: Fields a copy adds to its pledge.
NEED_FACTS = ("_id", "need_id", "recipient_id", "organisation_id", "kelurahan_code", "item", "unit")


def as_embedded(copy: dict[str, Any]) -> dict[str, Any]:
    """A pledge as a ledger embeds it, from its copy."""
    return {**{k: v for k, v in copy.items() if k not in NEED_FACTS}, "pledge_id": copy["_id"]}


def admin(service: Any) -> dict[str, str]:
    return service.auth("admin")


def ledgers(service: Any) -> Any:
    return service.parts.runtime.db["ledgers"]


def copies(service: Any) -> Any:
    return service.parts.runtime.db["pledges"]


async def stored_ledger(service: Any, need_id: str) -> dict[str, Any]:
    found = await ledgers(service).find_one({"_id": need_id})
    assert found is not None
    return found


async def dispatched(service: Any, need_id: str, quantity: int, donor: str = "donor-1") -> str:
    """A pledge made, confirmed by the recipient and dispatched by its donor."""
    pledge_id = (await service.pledge(need_id, quantity, donor=donor)).json()["pledge_id"]
    recipient = service.auth("recipient", recipient_id="rcp_a")
    assert (await service.client.post(f"/v1/pledges/{pledge_id}/confirm", headers=recipient)).status_code == 200
    donor_headers = service.auth("donor", subject=donor)
    assert (await service.client.post(f"/v1/pledges/{pledge_id}/dispatch", headers=donor_headers)).status_code == 200
    return pledge_id


async def test_settled_pledges_leave_the_ledger_and_every_read_still_finds_them(service: Any) -> None:
    need_id = await service.open_need(quantity=20)
    donor = service.auth("donor", subject="donor-1")
    kept = (await service.pledge(need_id, 2)).json()["pledge_id"]
    cancelled = (await service.pledge(need_id, 3, key="bounded-cancel")).json()["pledge_id"]
    delivered = await dispatched(service, need_id, 4)
    assert (await service.client.post(f"/v1/pledges/{cancelled}/cancel", headers=donor)).status_code == 200
    recipient = service.auth("recipient", recipient_id="rcp_a")
    receipt = {"received_quantity": 3, "proof_ref": "foto-1"}
    response = await service.client.post(f"/v1/pledges/{delivered}/deliver", headers=recipient, json=receipt)
    assert response.status_code == 200 and response.json()["status"] == "delivered"

    stored = await stored_ledger(service, need_id)
    assert [p["pledge_id"] for p in stored["pledges"]] == [kept]
    assert stored["leaving"] == [] and stored["live_pledges"] == 1
    assert (stored["committed"], stored["in_transit"], stored["delivered"]) == (2 + 3, 0, 3)
    for pledge_id, status in ((cancelled, "cancelled"), (delivered, "delivered")):
        copy = await copies(service).find_one({"_id": pledge_id})
        assert copy["status"] == status and copy["need_id"] == need_id
        one = await service.client.get(f"/v1/pledges/{pledge_id}", headers=admin(service))
        assert one.status_code == 200 and one.json()["status"] == status
    listed = (await service.client.get(f"/v1/needs/{need_id}/pledges", headers=admin(service))).json()
    by_id = {p["pledge_id"]: p for p in listed}
    assert len(listed) == 3
    assert {i: p["status"] for i, p in by_id.items()} == {
        kept: "pledged",
        cancelled: "cancelled",
        delivered: "delivered",
    }
    assert by_id[delivered]["history"][-1]["proof_ref"] == "foto-1"

    # A settled pledge moves no further, and a retried create of it replays it (found in its copy).
    again = await service.client.post(f"/v1/pledges/{cancelled}/confirm", headers=recipient)
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"
    replay = await service.pledge(need_id, 3, key="bounded-cancel")
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["pledge_id"] == cancelled and replay.json()["status"] == "cancelled"
    other = await service.pledge(await service.open_need(quantity=5), 3, key="bounded-cancel")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert (await stored_ledger(service, need_id))["committed"] == 5


async def test_a_move_a_crash_interrupted_is_finished_by_the_next_write_or_the_sweep(service: Any) -> None:
    need_id = await service.open_need(quantity=20)
    donor = service.auth("donor", subject="donor-1")
    first = (await service.pledge(need_id, 1)).json()["pledge_id"]
    second = (await service.pledge(need_id, 1)).json()["pledge_id"]
    for pledge_id in (first, second):
        assert (await service.client.post(f"/v1/pledges/{pledge_id}/cancel", headers=donor)).status_code == 200
    # Simulate a crash after the ledger write (which moved the revision on): the settled pledge is still
    # parked, its copy is the old one.
    for pledge_id in (first, second):
        copy = await copies(service).find_one({"_id": pledge_id})
        parked = as_embedded(copy)
        await ledgers(service).update_one({"_id": need_id}, {"$push": {"leaving": parked}, "$inc": {"rev": 1}})
        await copies(service).update_one({"_id": pledge_id}, {"$set": {"version": 1, "status": "pledged"}})
    # Reads find the parked pledge in the ledger, not the stale copy.
    one = await service.client.get(f"/v1/pledges/{first}", headers=admin(service))
    assert one.json()["status"] == "cancelled"

    # The next write on the ledger finishes both moves.
    assert (await service.pledge(need_id, 1)).status_code == 201
    stored = await stored_ledger(service, need_id)
    assert stored["leaving"] == [] and stored["live_pledges"] == 1
    for pledge_id in (first, second):
        assert (await copies(service).find_one({"_id": pledge_id}))["status"] == "cancelled"

    # An idle ledger is finished by the copies sweep.
    await ledgers(service).update_one({"_id": need_id}, {"$push": {"leaving": parked}, "$inc": {"rev": 1}})
    await copies(service).update_one({"_id": second}, {"$set": {"version": 1, "status": "pledged"}})
    assert await service.parts.ledger.sweep_copies() >= 1
    assert (await stored_ledger(service, need_id))["leaving"] == []
    assert (await copies(service).find_one({"_id": second}))["status"] == "cancelled"


async def test_a_ledger_from_before_is_compacted_and_counted(service: Any) -> None:
    need_id = await service.open_need(quantity=30)
    donor = service.auth("donor", subject="donor-1")
    live = (await service.pledge(need_id, 2)).json()["pledge_id"]
    old = (await service.pledge(need_id, 2)).json()["pledge_id"]
    assert (await service.client.post(f"/v1/pledges/{old}/cancel", headers=donor)).status_code == 200
    # As a ledger written before pledges left it: the settled pledge embedded, no live count, no `leaving`.
    copy = await copies(service).find_one({"_id": old})
    embedded = as_embedded(copy)
    await ledgers(service).update_one(
        {"_id": need_id},
        {"$push": {"pledges": embedded}, "$unset": {"live_pledges": "", "leaving": ""}, "$inc": {"rev": 1}},
    )
    assert (await service.pledge(need_id, 1)).status_code == 201
    stored = await stored_ledger(service, need_id)
    assert stored["live_pledges"] == 2 and stored["committed"] == 3
    assert await service.parts.ledger.sweep_copies() >= 1
    stored = await stored_ledger(service, need_id)
    held = {p["pledge_id"] for p in stored["pledges"]}
    assert old not in held and live in held
    listed = (await service.client.get(f"/v1/needs/{need_id}/pledges", headers=admin(service))).json()
    assert sorted(p["pledge_id"] for p in listed) == sorted([live, old, stored["pledges"][-1]["pledge_id"]])


async def test_a_need_with_the_most_live_pledges_refuses_more_with_409(service: Any) -> None:
    need_id = await service.open_need(quantity=5000)
    assert (await service.pledge(need_id, 1)).status_code == 201
    # Stand in for MAX_LIVE_PLEDGES - 1 others without making them one by one.
    await ledgers(service).update_one(
        {"_id": need_id}, {"$set": {"live_pledges": MAX_LIVE_PLEDGES}, "$inc": {"rev": 1}}
    )
    refused = await service.pledge(need_id, 1)
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "too_many_live_pledges" and body["details"] == {"live_pledges_limit": MAX_LIVE_PLEDGES}
    donor = service.auth("donor", subject="donor-1")
    listed = (await service.client.get(f"/v1/needs/{need_id}/pledges", headers=admin(service))).json()
    pledge_id = listed[0]["pledge_id"]
    assert (await service.client.post(f"/v1/pledges/{pledge_id}/cancel", headers=donor)).status_code == 200
    assert (await service.pledge(need_id, 1)).status_code == 201
