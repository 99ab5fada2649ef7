"""Retried transitions across two replicas (a move applied on one, the retry answered by the other), and when
a donor's access to the recipient's contact ends (the boundary, on the injected clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ksbb_contracts.events.registry import RecipientContactRecorded
from ksbb_kit.auth import Principal
from ksbb_kit.testing.plugin import running
from ksbb_kit.testing.waiting import eventually
from ksbb_pledges.bootstrap import PledgesService, compose

from .conftest import settings_for

pytestmark = pytest.mark.integration

RECIPIENT, ORGANISATION = "rcp_retry", "org_retry"
#: How long the second replica lets donors read a contact after delivery (the first keeps the default).
SHORT_ACCESS_DAYS = 2


@dataclass
class Replica:
    """A second pledges service on the same database and topics (another replica behind the gateway)."""

    client: httpx.AsyncClient
    parts: PledgesService


@pytest_asyncio.fixture(scope="module")
async def other(service: Any) -> AsyncIterator[Replica]:
    """Replica B of the module's service (replica A), sharing its clock; contacts close sooner here."""
    settings = settings_for(service.infra, service.issuer, service.namespace).model_copy(
        update={"contact_access_days": SHORT_ACCESS_DAYS}
    )
    parts = compose(settings, clock=service.clock)
    async with running(parts.app) as client:
        yield Replica(client, parts)


def actors(service: Any) -> dict[str, dict[str, str]]:
    """Authorization headers of the pledge's donor, its recipient and its facilitator."""
    return {
        "donor": service.auth("donor", subject="donor-retry"),
        "recipient": service.auth("recipient", recipient_id=RECIPIENT),
        "facilitator": service.auth("facilitator", org_id=ORGANISATION),
    }


async def new_pledge(service: Any, quantity: int = 3) -> str:
    """A pledge of the retry donor on a fresh need of the retry recipient."""
    need_id = await service.open_need(quantity=10, recipient_id=RECIPIENT, organisation_id=ORGANISATION)
    created = await service.pledge(need_id, quantity, donor="donor-retry")
    assert created.status_code == 201, created.text
    return str(created.json()["pledge_id"])


async def move(client: httpx.AsyncClient, pledge_id: str, action: str, headers: dict[str, str], **kw: Any) -> Any:
    """POST one transition."""
    return await client.post(f"/v1/pledges/{pledge_id}/{action}", headers=headers, **kw)


async def test_a_move_retried_on_the_other_replica_answers_the_current_state(service: Any, other: Replica) -> None:
    who = actors(service)
    pledge_id = await new_pledge(service)
    steps = [
        ("confirm", who["recipient"], {}),
        ("dispatch", who["donor"], {}),
        ("deliver", who["facilitator"], {"json": {"received_quantity": 2, "proof_ref": "foto-1"}}),
    ]
    for action, headers, body in steps:
        first = await move(service.client, pledge_id, action, headers, **body)
        assert first.status_code == 200, first.text
        retried = await move(other.client, pledge_id, action, headers, **body)
        assert retried.status_code == 200, retried.text
        assert (retried.json()["status"], retried.json()["version"]) == (
            first.json()["status"],
            first.json()["version"],
        )
    final = retried.json()
    assert [h["status"] for h in final["history"]] == ["pledged", "confirmed", "dispatched", "delivered"]
    need_id = final["need_id"]
    ledger = await service.ledger_or_none(need_id)
    assert (ledger["committed"], ledger["in_transit"], ledger["delivered"]) == (2, 0, 2)
    # Another request is not a retry: a different receipt, or the same move by someone else, is still refused.
    other_receipt = await move(other.client, pledge_id, "deliver", who["facilitator"], json={"received_quantity": 3})
    assert (other_receipt.status_code, other_receipt.json()["code"]) == (409, "illegal_transition")
    by_someone_else = await move(other.client, pledge_id, "confirm", who["facilitator"])
    assert (by_someone_else.status_code, by_someone_else.json()["code"]) == (409, "illegal_transition")


@pytest.mark.parametrize(
    ("action", "actor", "body"), [("cancel", "donor", None), ("reject", "recipient", {"reason": "sudah cukup"})]
)
async def test_ending_a_pledge_twice_answers_the_ended_pledge(
    service: Any, other: Replica, action: str, actor: str, body: dict[str, Any] | None
) -> None:
    headers = actors(service)[actor]
    pledge_id = await new_pledge(service)
    first = await move(service.client, pledge_id, action, headers, json=body)
    retried = await move(other.client, pledge_id, action, headers, json=body)
    assert (first.status_code, retried.status_code) == (200, 200), retried.text
    assert retried.json()["status"] == first.json()["status"] and retried.json()["version"] == first.json()["version"]


async def test_a_key_replays_on_the_other_replica_and_refuses_another_body(service: Any, other: Replica) -> None:
    who = actors(service)
    pledge_id = await new_pledge(service)
    keyed = {**who["recipient"], "Idempotency-Key": "confirm-once"}
    first = await move(service.client, pledge_id, "confirm", keyed)
    retried = await move(other.client, pledge_id, "confirm", keyed)
    assert (first.status_code, retried.status_code) == (200, 200)
    assert retried.headers["Idempotent-Replayed"] == "true" and retried.json()["status"] == "confirmed"
    await move(service.client, pledge_id, "dispatch", who["donor"])
    delivering = {**who["facilitator"], "Idempotency-Key": "deliver-once"}
    delivered = await move(service.client, pledge_id, "deliver", delivering, json={"received_quantity": 3})
    assert delivered.status_code == 200
    changed = await move(other.client, pledge_id, "deliver", delivering, json={"received_quantity": 1})
    assert (changed.status_code, changed.json()["code"]) == (422, "idempotency_key_reused")


async def test_a_move_whose_answer_was_lost_is_answered_on_retry(service: Any, other: Replica) -> None:
    pledge_id = await new_pledge(service)
    # Replica A applies the confirmation and dies before answering (nor recording the key).
    await service.parts.pledges.confirm(
        pledge_id,
        Principal.model_validate({"subject": "recipient-account", "role": "recipient", "recipient_id": RECIPIENT}),
    )
    keyed = {**actors(service)["recipient"], "Idempotency-Key": "confirm-after-crash"}
    retried = await move(other.client, pledge_id, "confirm", keyed)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "confirmed" and retried.json()["version"] == 2


async def test_concurrent_retries_of_one_move_on_both_replicas_agree(service: Any, other: Replica) -> None:
    pledge_id = await new_pledge(service)
    keyed = {**actors(service)["recipient"], "Idempotency-Key": "confirm-twice-at-once"}
    answers = await asyncio.gather(
        move(service.client, pledge_id, "confirm", keyed), move(other.client, pledge_id, "confirm", keyed)
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert {a.json()["version"] for a in answers} == {2}


async def test_the_contact_closes_a_set_time_after_delivery(service: Any, other: Replica) -> None:
    who = actors(service)
    pledge_id = await new_pledge(service)
    await service.publish(
        RecipientContactRecorded(
            recipient_id=RECIPIENT, organisation_id=ORGANISATION, contact_name="Pak Budi", phone="+62811222333"
        )
    )
    url = f"/v1/pledges/{pledge_id}/recipient-contact"

    async def contact() -> Any:
        response = await service.client.get(url, headers=who["donor"])
        return response.json() if response.status_code == 200 else None

    live = await eventually(contact, what="contact replicated")
    assert live["access_ends_at"] is None  # open for as long as the pledge is on its way
    await move(service.client, pledge_id, "confirm", who["recipient"])
    await move(service.client, pledge_id, "dispatch", who["donor"])
    delivered = await move(service.client, pledge_id, "deliver", who["facilitator"], json={"received_quantity": 3})
    delivered_at = service.clock.now()
    assert delivered.status_code == 200
    ends = delivered_at + service.settings.contact_after_delivery
    assert service.settings.contact_after_delivery == timedelta(days=14)
    start = service.clock.now()
    try:
        service.clock.set(ends - timedelta(seconds=1))
        still = await service.client.get(url, headers=who["donor"])
        assert still.status_code == 200, still.text
        assert still.json()["access_ends_at"].startswith(ends.isoformat()[:19])
        # The other replica is configured with a shorter window: the setting, not a constant, decides.
        short = await other.client.get(url, headers=who["donor"])
        assert (short.status_code, short.json()["code"]) == (409, "contact_access_ended")
        service.clock.set(ends)
        ended = await service.client.get(url, headers=who["donor"])
        assert (ended.status_code, ended.json()["code"]) == (409, "contact_access_ended"), ended.text
        assert ended.json()["details"]["access_ended_at"].startswith(ends.isoformat()[:19])
    finally:
        service.clock.set(start)
    # At once, not after some days, when a pledge is cancelled.
    cancelled_id = await new_pledge(service, quantity=1)
    cancelled_url = f"/v1/pledges/{cancelled_id}/recipient-contact"
    assert (await service.client.get(cancelled_url, headers=who["donor"])).status_code == 200
    await move(service.client, cancelled_id, "cancel", who["donor"])
    gone = await service.client.get(cancelled_url, headers=who["donor"])
    assert (gone.status_code, gone.json()["code"]) == (409, "pledge_not_live")
