"""One poisoned series never stops recurrence: it is marked stuck and every other series opens its next period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_registry.api.deps import Services

from .conftest import Caller, need_payload, organisation_payload, recipient_payload

pytestmark = pytest.mark.integration


async def weekly_need(admin: Caller, recipient_id: str) -> dict[str, Any]:
    created = await admin.post(f"/v1/recipients/{recipient_id}/needs", json=need_payload(recurrence="weekly", days=3))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_a_series_whose_date_overflows_is_marked_stuck_and_the_others_open_their_period(
    service_app: tuple[Any, Any], dev_issuer: DevIssuer, clock: ManualClock, services: Services, registry_db: Any
) -> None:
    admin = Caller(service_app[1], dev_issuer.token("admin", subject="admin-1"))
    org = (await admin.post("/v1/organisations", json=organisation_payload())).json()["organisation_id"]
    recipient = (await admin.post("/v1/recipients", json=recipient_payload(org))).json()["recipient_id"]
    assert (await admin.post(f"/v1/recipients/{recipient}/verify", json={"reason": "kunjungan"})).status_code == 200
    assert (await admin.post(f"/v1/recipients/{recipient}/activate", json={})).status_code == 200
    poisoned, *healthy = [await weekly_need(admin, recipient) for _ in range(3)]
    # A need accepted before dates were bounded: shifting its date by a week passes year 9999.
    await registry_db["needs"].update_one({"_id": poisoned["need_id"]}, {"$set": {"needed_by": "9999-12-31"}})

    clock.advance(timedelta(days=7))
    runtime = service_app[0].state.runtime
    assert await services.needs.open_due_periods(stuck=runtime.stuck) == 2, "the healthy series opened"
    for need in healthy:
        series = (await admin.get("/v1/needs", params={"series_id": need["series_id"]})).json()["items"]
        assert len(series) == 2
    stuck = await runtime.stuck.listing("need-recurrence")
    assert [s["item_id"] for s in stuck] == [poisoned["need_id"]] and "OverflowError" in stuck[0]["error"]
    assert await services.needs.open_due_periods(stuck=runtime.stuck) == 0, "the others are done; it stays stuck"
    assert (await runtime.stuck.listing("need-recurrence"))[0]["failures"] == 2
