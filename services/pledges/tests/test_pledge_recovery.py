"""A pledge its database lost after the event was out is taken back from the pledge topic (real Kafka and
MongoDB): kept with its units, or cancelled with `lost_in_outage` when others pledged them meanwhile.

The loss is planted the way a crash leaves it: right after the 201 (long before the follower's delay is up)
the reservation is removed from the ledger and its copy, the ledger's figures put back as they were.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.plugin import running
from ksbb_kit.testing.waiting import eventually
from ksbb_pledges.bootstrap import compose
from ksbb_pledges.domain.recovery import NOT_KEPT_REASON
from pymongo import AsyncMongoClient

from .conftest import START, Service, settings_for

pytestmark = pytest.mark.integration

#: Short, so the test is quick; still far longer than planting the loss takes.
DELAY_SECONDS = 3


@pytest_asyncio.fixture(scope="module")
async def service(infra: Infra, dev_issuer: DevIssuer, module_namespace: str) -> AsyncIterator[Service]:
    """A pledges service whose follower reads pledge events back after DELAY_SECONDS."""
    clock = ManualClock(START)
    settings = settings_for(infra, dev_issuer, module_namespace).model_copy(
        update={"pledge_recovery_delay_seconds": DELAY_SECONDS}
    )
    parts = compose(settings, clock=clock)
    async with running(parts.app) as client:
        yield Service(client=client, parts=parts, settings=settings, clock=clock, issuer=dev_issuer, infra=infra,
                      namespace=module_namespace)


async def lose(service: Service, need_id: str, pledge_id: str, quantity: int) -> None:
    """Remove a live reservation as a crash of the database would have lost it."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(service.infra.mongodb_url)
    try:
        db = client[service.settings.database_name]
        removed = await db.ledgers.update_one(
            {"_id": need_id, "pledges.pledge_id": pledge_id},
            {"$pull": {"pledges": {"pledge_id": pledge_id}},
             "$inc": {"committed": -quantity, "live_pledges": -1, "rev": 1}},
        )
        assert removed.modified_count == 1
        await db.pledges.delete_one({"_id": pledge_id})
    finally:
        await client.close()


async def pledge_as(service: Service, pledge_id: str, donor: str) -> dict[str, Any] | None:
    """The pledge as its donor reads it; None while it is unknown."""
    found = await service.client.get(f"/v1/pledges/{pledge_id}", headers=service.auth("donor", subject=donor))
    assert found.status_code in (200, 404), found.text
    return found.json() if found.status_code == 200 else None


async def test_a_pledge_lost_after_its_event_comes_back_with_its_units_and_its_retry_is_a_replay(
    service: Service,
) -> None:
    need_id = await service.open_need(quantity=10)
    made = await service.pledge(need_id, 4, donor="donor-lost", key="lost-1")
    assert made.status_code == 201, made.text
    pledge_id = made.json()["pledge_id"]
    await lose(service, need_id, pledge_id, 4)
    assert await pledge_as(service, pledge_id, "donor-lost") is None

    back = await eventually(lambda: pledge_as(service, pledge_id, "donor-lost"), within=60,
                            what="the lost pledge taken back from its event")
    assert (back["status"], back["quantity"]) == ("pledged", 4)
    ledger = await service.ledger_or_none(need_id)
    assert ledger is not None and ledger["committed"] == 4
    retried = await service.pledge(need_id, 4, donor="donor-lost", key="lost-1")
    assert retried.status_code in (200, 201) and retried.json()["pledge_id"] == pledge_id, retried.text
    # The follower lags on purpose: its backlog is not reported as the service's consumer lag (an alert).
    metrics = (await service.client.get("/metrics")).text
    assert "ksbb_consumer_lag_records{" in metrics
    assert f'topic="{service.namespace}ksbb.pledges.pledges"' not in metrics


async def test_a_pledge_whose_units_others_took_meanwhile_comes_back_cancelled(service: Service) -> None:
    need_id = await service.open_need(quantity=10)
    made = await service.pledge(need_id, 4, donor="donor-first")
    assert made.status_code == 201, made.text
    pledge_id = made.json()["pledge_id"]
    await lose(service, need_id, pledge_id, 4)
    other = await service.pledge(need_id, 8, donor="donor-second")  # fits only because the 4 were lost
    assert other.status_code == 201, other.text

    async def cancelled() -> dict[str, Any] | None:
        found = await pledge_as(service, pledge_id, "donor-first")
        return found if found and found["status"] == "cancelled" else None

    back = await eventually(cancelled, within=60, what="the lost pledge taken back as cancelled")
    assert back["reason"] == NOT_KEPT_REASON
    ledger = await service.ledger_or_none(need_id)
    assert ledger is not None and ledger["committed"] == 8  # never over-pledged
