"""The registry's recipient and organisation events repair this service's replicas and the recipient blocking of
its ledgers (a version the registry reused with other content, a view ahead of a registry that lost writes),
through the real broker and database (ADR 0005)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from ksbb_contracts.events.registry import OrganisationPublic, OrganisationUpdated, RecipientUpdated
from ksbb_contracts.vocab import OrganisationKind, OrganisationStatus, RecipientStatus
from ksbb_kit.testing.waiting import eventually
from prometheus_client import REGISTRY

from .conftest import Service, recipient_snapshot

pytestmark = pytest.mark.integration


def repairs(view: str, reason: str) -> float:
    """`ksbb_view_repairs_total` of this process."""
    return REGISTRY.get_sample_value("ksbb_view_repairs_total", {"view": view, "reason": reason}) or 0.0


async def replica(service: Service, collection: str, key: str) -> dict[str, Any]:
    return await service.parts.runtime.db[collection].find_one({"_id": key}) or {}


async def test_a_recipient_replica_and_ledger_blocking_are_repaired_at_their_version_and_when_ahead(
    service: Service,
) -> None:
    recipient_id = f"rcp_{uuid.uuid4().hex[:8]}"
    await service.publish(RecipientUpdated(recipient=recipient_snapshot(recipient_id, version=3, households=10),
                                           occurred_at=service.clock.now()))
    await eventually(lambda: replica(service, "recipients", recipient_id), what="the recipient replica")
    need_id = await service.open_need(recipient_id=recipient_id, quantity=20)
    db = service.parts.runtime.db

    # At the registry's version, the replica holds other beneficiaries the registry lost in a crash.
    await db.recipients.update_one({"_id": recipient_id}, {"$set": {"households": 7, "state_digest": "lost-0001"}})
    same_before = repairs("pledges.recipients", "same_version_other_figures")
    await service.publish(RecipientUpdated(recipient=recipient_snapshot(recipient_id, version=3, households=10),
                                           occurred_at=service.clock.now()))

    async def households_repaired() -> bool:
        return (await replica(service, "recipients", recipient_id)).get("households") == 10

    await eventually(households_repaired, what="the replica repaired at its version")
    assert repairs("pledges.recipients", "same_version_other_figures") == same_before + 1

    # Replica and ledger are ahead: they saw a suspension (version 4) the registry lost and never repeated.
    suspended = recipient_snapshot(recipient_id, version=4, status=RecipientStatus.SUSPENDED, households=10)
    await service.publish(RecipientUpdated(recipient=suspended, occurred_at=service.clock.now()))

    async def blocked() -> bool:
        return bool((await replica(service, "ledgers", need_id)).get("recipient_blocked"))

    await eventually(blocked, what="the ledger blocked by the suspension")
    assert (await service.pledge(need_id, 1)).status_code == 409
    replica_before = repairs("pledges.recipients", "restated")
    ledger_before = repairs("pledges.ledgers.recipient_version", "restated")
    # A plain redelivery of the registry's version 3 changes nothing: the view holds a newer one.
    await service.publish(RecipientUpdated(recipient=recipient_snapshot(recipient_id, version=3, households=10),
                                           occurred_at=service.clock.now()))
    restated = RecipientUpdated(recipient=recipient_snapshot(recipient_id, version=3, households=10),
                                occurred_at=service.clock.now(), restated=True)
    await service.publish(restated)

    async def unblocked() -> bool:
        ledger = await replica(service, "ledgers", need_id)
        held = await replica(service, "recipients", recipient_id)
        return ledger.get("recipient_blocked") is False and held.get("version") == 3 and held.get("status") == "active"

    await eventually(unblocked, what="replica and ledger back at the registry's state")
    assert repairs("pledges.recipients", "restated") == replica_before + 1
    assert repairs("pledges.ledgers.recipient_version", "restated") == ledger_before + 1
    ledger = await replica(service, "ledgers", need_id)
    assert (ledger["recipient_version"], ledger["recipient_digest"]) == (3, restated.recipient_digest())
    assert (await service.pledge(need_id, 1, donor="donor-after-repair")).status_code == 201


async def test_an_organisation_replica_is_repaired_at_its_version_and_when_ahead(service: Service) -> None:
    organisation_id = f"org_{uuid.uuid4().hex[:8]}"

    def organisation(version: int, name: str) -> OrganisationPublic:
        return OrganisationPublic(organisation_id=organisation_id, name=name, kind=OrganisationKind.NGO,
                                  area_codes=["31.71"], status=OrganisationStatus.ACTIVE, version=version)

    async def held_name() -> tuple[int, str]:
        doc = await replica(service, "organisations", organisation_id)
        return int(doc.get("version") or 0), str(doc.get("name"))

    await service.publish(OrganisationUpdated(organisation=organisation(2, "Lembaga Lama")))
    await eventually(lambda: _equals(held_name, (2, "Lembaga Lama")), what="the organisation replica")
    same_before = repairs("pledges.organisations", "same_version_other_figures")
    restated_before = repairs("pledges.organisations", "restated")
    await service.publish(OrganisationUpdated(organisation=organisation(2, "Lembaga Baru")))  # version 2 reused
    await eventually(lambda: _equals(held_name, (2, "Lembaga Baru")), what="repaired at its version")
    await service.publish(OrganisationUpdated(organisation=organisation(1, "Lembaga Benar"), restated=True))
    await eventually(lambda: _equals(held_name, (1, "Lembaga Benar")), what="repaired when ahead")
    assert repairs("pledges.organisations", "same_version_other_figures") == same_before + 1
    assert repairs("pledges.organisations", "restated") == restated_before + 1


async def _equals(read: Any, expected: Any) -> bool:
    return bool(await read() == expected)
