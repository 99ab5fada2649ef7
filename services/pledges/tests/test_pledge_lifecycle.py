"""Pledges through HTTP and Kafka on the real infrastructure: reservation, lifecycle, registry events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ksbb_contracts.events.registry import (
    NeedCancelled,
    NeedChanged,
    NeedClosed,
    RecipientContactRecorded,
    RecipientSuspended,
)
from ksbb_contracts.vocab import NeedStatus, RecipientStatus
from ksbb_kit.kafka import KafkaRecordPublisher
from ksbb_kit.testing.kafka import TopicReader
from ksbb_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def topics(service: Any, *names: str) -> list[str]:
    return [service.namespace + n for n in names]


async def test_pledge_reserves_and_publishes_events(service: Any) -> None:
    need_id = await service.open_need(quantity=10)
    response = await service.pledge(need_id, 4)
    assert response.status_code == 201, response.text
    pledge = response.json()
    assert pledge["status"] == "pledged" and pledge["quantity"] == 4
    ledger = await service.ledger_or_none(need_id)
    assert (ledger["requested"], ledger["committed"], ledger["remaining"]) == (10, 4, 6)

    over = await service.pledge(need_id, 7)
    assert over.status_code == 409
    assert over.json()["details"]["available"] == 6

    async with TopicReader(
        service.infra.kafka_bootstrap, topics(service, "ksbb.pledges.pledges", "ksbb.pledges.ledger")
    ) as reader:
        await reader.wait_for(
            lambda es: any(e.type == "ksbb.pledge.created.v1" and e.subject == pledge["pledge_id"] for e in es)
        )
        changes = [e for e in reader.envelopes("ksbb.need_ledger.changed.v1") if e.subject == need_id]
        await reader.wait_for(
            lambda es: any(
                e.type == "ksbb.need_ledger.changed.v1" and e.subject == need_id and e.data["committed"] == 4
                for e in es
            )
        )
        changes = [e for e in reader.envelopes("ksbb.need_ledger.changed.v1") if e.subject == need_id]
        versions = [e.data["ledger_version"] for e in changes]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
        created = next(e for e in reader.envelopes("ksbb.pledge.created.v1") if e.subject == pledge["pledge_id"])
        assert created.data["pledge"]["need_id"] == need_id and created.data["pledge"]["recipient_id"] == "rcp_a"


async def test_idempotent_create_returns_the_same_pledge(service: Any) -> None:
    need_id = await service.open_need(quantity=10)
    first = await service.pledge(need_id, 3, key="retry-key-0001")
    again = await service.pledge(need_id, 3, key="retry-key-0001")
    assert first.status_code == 201 and again.status_code == 201
    assert again.json()["pledge_id"] == first.json()["pledge_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert (await service.ledger_or_none(need_id))["committed"] == 3
    reused = await service.pledge(need_id, 5, key="retry-key-0001")
    assert reused.status_code == 422 and reused.json()["field"] == "Idempotency-Key"
    other_donor = await service.pledge(need_id, 3, key="retry-key-0001", donor="donor-2")
    assert other_donor.status_code == 201 and other_donor.json()["pledge_id"] != first.json()["pledge_id"]
    assert (await service.ledger_or_none(need_id))["committed"] == 6


async def test_full_lifecycle_with_partial_delivery(service: Any) -> None:
    need_id = await service.open_need(quantity=10, recipient_id="rcp_life", organisation_id="org_life")
    pledge_id = (await service.pledge(need_id, 6)).json()["pledge_id"]
    donor = service.auth("donor", subject="donor-1")
    recipient = service.auth("recipient", recipient_id="rcp_life")
    facilitator = service.auth("facilitator", org_id="org_life")

    early = await service.client.post(f"/v1/pledges/{pledge_id}/dispatch", headers=donor)
    assert early.status_code == 409 and early.json()["code"] == "illegal_transition"
    confirmed = await service.client.post(f"/v1/pledges/{pledge_id}/confirm", headers=recipient)
    assert confirmed.json()["status"] == "confirmed"
    dispatched = await service.client.post(f"/v1/pledges/{pledge_id}/dispatch", headers=donor)
    assert dispatched.json()["status"] == "dispatched"
    ledger = await service.ledger_or_none(need_id)
    assert (ledger["committed"], ledger["in_transit"], ledger["delivered"]) == (6, 6, 0)
    cancel_late = await service.client.post(f"/v1/pledges/{pledge_id}/cancel", headers=donor)
    assert cancel_late.status_code == 409
    too_much = await service.client.post(
        f"/v1/pledges/{pledge_id}/deliver", headers=facilitator, json={"received_quantity": 7}
    )
    assert too_much.status_code == 422
    delivered = await service.client.post(
        f"/v1/pledges/{pledge_id}/deliver",
        headers=facilitator,
        json={"received_quantity": 5, "proof_ref": "foto-123"},
    )
    body = delivered.json()
    assert body["status"] == "delivered" and body["delivered_quantity"] == 5
    assert [h["status"] for h in body["history"]] == ["pledged", "confirmed", "dispatched", "delivered"]
    ledger = await service.ledger_or_none(need_id)
    # Delivering less reduces the commitment to what arrived, re-opening the rest of the need.
    assert (ledger["committed"], ledger["in_transit"], ledger["delivered"], ledger["remaining"]) == (
        5,
        0,
        5,
        5,
    )
    again = await service.client.post(
        f"/v1/pledges/{pledge_id}/deliver", headers=facilitator, json={"received_quantity": 5}
    )
    assert again.status_code == 409
    listed = await service.client.get(f"/v1/needs/{need_id}/pledges", headers=facilitator)
    assert [p["status"] for p in listed.json()] == ["delivered"]
    mine = await service.client.get("/v1/pledges", headers=donor)
    assert pledge_id in {p["pledge_id"] for p in mine.json()["items"]}
    per_recipient = await service.client.get("/v1/recipients/rcp_life/pledges", headers=recipient)
    assert [p["pledge_id"] for p in per_recipient.json()["items"]] == [pledge_id]


async def test_cancel_and_reject_release_the_reservation(service: Any) -> None:
    need_id = await service.open_need(quantity=10)
    donor = service.auth("donor", subject="donor-1")
    first = (await service.pledge(need_id, 4)).json()["pledge_id"]
    second = (await service.pledge(need_id, 5)).json()["pledge_id"]
    assert (await service.ledger_or_none(need_id))["committed"] == 9
    cancelled = await service.client.post(f"/v1/pledges/{first}/cancel", headers=donor)
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["reason"] == "donor_cancelled"
    no_reason = await service.client.post(
        f"/v1/pledges/{second}/reject", headers=service.auth("facilitator", org_id="org_a"), json={}
    )
    assert no_reason.status_code == 422
    rejected = await service.client.post(
        f"/v1/pledges/{second}/reject",
        headers=service.auth("facilitator", org_id="org_a"),
        json={"reason": "barang tidak sesuai"},
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == "barang tidak sesuai"
    assert (await service.ledger_or_none(need_id))["committed"] == 0


async def test_registry_events_update_ledger_and_cancel_live_pledges(service: Any) -> None:
    need_id = await service.open_need(quantity=10, recipient_id="rcp_close")
    donor = service.auth("donor", subject="donor-1")
    recipient = service.auth("recipient", recipient_id="rcp_close")
    pledged = (await service.pledge(need_id, 2)).json()["pledge_id"]
    confirmed = (await service.pledge(need_id, 3)).json()["pledge_id"]
    dispatched = (await service.pledge(need_id, 4)).json()["pledge_id"]
    for pledge_id in (confirmed, dispatched):
        await service.client.post(f"/v1/pledges/{pledge_id}/confirm", headers=recipient)
    await service.client.post(f"/v1/pledges/{dispatched}/dispatch", headers=donor)

    reader = TopicReader(service.infra.kafka_bootstrap, topics(service, "ksbb.pledges.pledges"))
    async with reader:
        changed = service.need(need_id, recipient_id="rcp_close", quantity=12, version=2)
        await service.publish(NeedChanged(need=changed, occurred_at=service.clock.now()))
        await eventually(lambda: _requested_is(service, need_id, 12), what="requested 12")
        closed = service.need(need_id, recipient_id="rcp_close", quantity=12, version=3, status=NeedStatus.CLOSED)
        await service.publish(NeedClosed(need=closed, occurred_at=service.clock.now(), reason="recipient_moved"))
        ledger = await eventually(lambda: _status_is(service, need_id, "closed"), what="closed")
        assert (ledger["committed"], ledger["in_transit"]) == (4, 4)
        await reader.wait_for(
            lambda es: {e.subject for e in es if e.type == "ksbb.pledge.cancelled.v1"} >= {pledged, confirmed}
        )
        reasons = {
            e.data["reason"] for e in reader.envelopes("ksbb.pledge.cancelled.v1") if e.subject in (pledged, confirmed)
        }
        assert reasons == {"recipient_moved"}
        assert dispatched not in {e.subject for e in reader.envelopes("ksbb.pledge.cancelled.v1")}
    # A stale snapshot (older version) redelivered later changes nothing.
    stale = service.need(need_id, recipient_id="rcp_close", quantity=50, version=2)
    await service.publish(NeedChanged(need=stale, occurred_at=service.clock.now()))
    refused = await service.pledge(need_id, 1)
    assert refused.status_code == 409 and refused.json()["code"] == "need_not_open"
    # The dispatched pledge may still be delivered.
    delivered = await service.client.post(
        f"/v1/pledges/{dispatched}/deliver", headers=recipient, json={"received_quantity": 4}
    )
    assert delivered.json()["status"] == "delivered"
    ledger = await service.ledger_or_none(need_id)
    assert (ledger["requested"], ledger["delivered"], ledger["status"]) == (12, 4, "closed")


async def test_need_cancelled_releases_pledges(service: Any) -> None:
    need_id = await service.open_need(quantity=5)
    pledge_id = (await service.pledge(need_id, 5)).json()["pledge_id"]
    cancelled = service.need(need_id, quantity=5, version=2, status=NeedStatus.CANCELLED)
    await service.publish(NeedCancelled(need=cancelled, occurred_at=service.clock.now(), reason="need_cancelled"))
    ledger = await eventually(lambda: _status_is(service, need_id, "cancelled"), what="cancelled")
    assert ledger["committed"] == 0
    got = await service.client.get(f"/v1/pledges/{pledge_id}", headers=service.auth("donor", subject="donor-1"))
    assert got.json()["status"] == "cancelled" and got.json()["reason"] == "need_cancelled"


async def test_recipient_suspension_cancels_and_blocks(service: Any) -> None:
    need_id = await service.open_need(quantity=5, recipient_id="rcp_susp")
    pledge_id = (await service.pledge(need_id, 2)).json()["pledge_id"]
    suspended = service.recipient("rcp_susp", status=RecipientStatus.SUSPENDED, version=3)
    await service.publish(RecipientSuspended(recipient=suspended, occurred_at=service.clock.now()))
    donor = service.auth("donor", subject="donor-1")

    async def cancelled() -> bool:
        got = await service.client.get(f"/v1/pledges/{pledge_id}", headers=donor)
        return got.json()["status"] == "cancelled"

    await eventually(cancelled, what="pledge cancelled on suspension")
    got = (await service.client.get(f"/v1/pledges/{pledge_id}", headers=donor)).json()
    assert got["reason"] == "recipient_suspended"
    refused = await service.pledge(need_id, 1)
    assert refused.status_code == 409 and refused.json()["code"] == "recipient_unavailable"


async def test_recipient_contact_only_for_the_pledging_donor(service: Any) -> None:
    need_id = await service.open_need(quantity=5, recipient_id="rcp_contact")
    pledge_id = (await service.pledge(need_id, 1)).json()["pledge_id"]
    url = f"/v1/pledges/{pledge_id}/recipient-contact"
    donor = service.auth("donor", subject="donor-1")
    assert (await service.client.get(url, headers=donor)).status_code == 404  # not known yet
    await service.publish(
        RecipientContactRecorded(
            recipient_id="rcp_contact", organisation_id="org_a", contact_name="Bu Siti", phone="+62811000111"
        )
    )

    async def contact() -> Any:
        response = await service.client.get(url, headers=donor)
        return response.json() if response.status_code == 200 else None

    found = await eventually(contact, what="contact replicated")
    assert found["contact_name"] == "Bu Siti" and found["contact_within_hours"] == 48
    for other in (
        service.auth("donor", subject="donor-2"),
        service.auth("admin"),
        service.auth("recipient", recipient_id="rcp_contact"),
    ):
        assert (await service.client.get(url, headers=other)).status_code == 403
    # A tombstone on the compacted contacts topic erases the replica.
    publisher = KafkaRecordPublisher(service.infra.kafka_bootstrap, client_id="test")
    await publisher.start()
    try:
        await publisher.send(service.namespace + "ksbb.registry.contacts", "rcp_contact", None, {})
    finally:
        await publisher.stop()

    async def erased() -> bool:
        return (await service.client.get(url, headers=donor)).status_code == 404

    await eventually(erased, what="contact erased")


async def test_donor_profile_publishes_public_part_and_contact(service: Any) -> None:
    donor = service.auth("donor", subject="donor-profile")
    async with TopicReader(
        service.infra.kafka_bootstrap, topics(service, "ksbb.pledges.donors", "ksbb.pledges.contacts")
    ) as reader:
        anonymous = await service.client.put(
            "/v1/donors/me",
            headers=donor,
            json={
                "kind": "company",
                "display_name": "PT Sumber Berkah",
                "contact": {"name": "Andi", "email": "andi@example.org", "phone": "+62812000222"},
            },
        )
        assert anonymous.status_code == 200, anonymous.text
        donor_id = anonymous.json()["donor_id"]
        opted_in = await service.client.put(
            "/v1/donors/me",
            headers=donor,
            json={"kind": "company", "display_name": "PT Sumber Berkah", "show_name": True},
        )
        assert opted_in.json()["version"] == 2
        await reader.wait_for(
            lambda es: len([e for e in es if e.type == "ksbb.donor.profile_updated.v1" and e.subject == donor_id]) == 2
        )
        profiles = [e.data for e in reader.envelopes("ksbb.donor.profile_updated.v1") if e.subject == donor_id]
        assert [p["display_name"] for p in profiles] == [None, "PT Sumber Berkah"]
        contacts = [e.data for e in reader.envelopes("ksbb.donor_contact.recorded.v1") if e.subject == donor_id]
        assert contacts and contacts[0]["name"] == "Andi"
    bad = await service.client.put("/v1/donors/me", headers=donor, json={"kind": "alien", "display_name": "x"})
    assert bad.status_code == 422 and bad.json()["field"] == "kind"
    assert (await service.client.get("/v1/donors/me", headers=donor)).json()["show_name"] is True


async def _requested_is(service: Any, need_id: str, requested: int) -> Any:
    ledger = await service.ledger_or_none(need_id)
    return ledger if ledger and ledger["requested"] == requested else None


async def _status_is(service: Any, need_id: str, status: str) -> Any:
    ledger = await service.ledger_or_none(need_id)
    return ledger if ledger and ledger["status"] == status else None


async def test_need_of_an_already_suspended_recipient_takes_no_pledges(service: Any) -> None:
    suspended = service.recipient("rcp_pre", status=RecipientStatus.SUSPENDED, version=2)
    await service.publish(RecipientSuspended(recipient=suspended, occurred_at=service.clock.now()))
    need_id = await service.open_need(quantity=50, recipient_id="rcp_pre")

    async def refused() -> bool:
        response = await service.pledge(need_id, 1)
        return response.status_code == 409 and response.json()["code"] == "recipient_unavailable"

    await eventually(refused, what="pledges refused for a suspended recipient")
    # Whatever slipped in before the block arrived was released by it.
    assert (await service.ledger_or_none(need_id))["committed"] == 0


async def test_sweep_repairs_lost_pledge_copies(service: Any) -> None:
    need_id = await service.open_need(quantity=5)
    pledge_id = (await service.pledge(need_id, 2)).json()["pledge_id"]
    ledgers = service.parts.ledger
    copies = service.parts.runtime.db["pledges"]
    # Simulate a crash between the ledger write and the copy: the copy is missing, then stale.
    await copies.delete_one({"_id": pledge_id})
    donor = service.auth("donor", subject="donor-1")
    assert pledge_id not in {
        p["pledge_id"]
        for p in (await service.client.get("/v1/pledges", headers=donor, params={"limit": 200})).json()["items"]
    }
    assert await ledgers.sweep_copies() >= 1
    await copies.update_one({"_id": pledge_id}, {"$set": {"version": 0, "status": "stale"}})
    assert await ledgers.sweep_copies(since=service.clock.now() - timedelta(minutes=1)) == 1
    listed = {
        p["pledge_id"]: p
        for p in (await service.client.get("/v1/pledges", headers=donor, params={"limit": 200})).json()["items"]
    }
    assert listed[pledge_id]["status"] == "pledged"
    assert await ledgers.sweep_copies() == 0
