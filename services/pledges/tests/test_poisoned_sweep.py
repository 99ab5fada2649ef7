"""One poisoned pledge never stops the expiry sweep: its need is marked stuck, every other need is swept."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def confirmed_pledge(service: Any, need_id: str) -> str:
    created = await service.pledge(need_id, 2)
    assert created.status_code == 201, created.text
    pledge_id = str(created.json()["pledge_id"])
    confirm = await service.client.post(f"/v1/pledges/{pledge_id}/confirm",
                                        headers=service.auth("recipient", recipient_id="rcp_a"))
    assert confirm.json()["status"] == "confirmed", confirm.text
    return pledge_id


async def test_a_pledge_whose_date_overflows_is_marked_stuck_and_the_other_needs_still_expire(service: Any) -> None:
    poisoned_need = await service.open_need()
    healthy_needs = [await service.open_need() for _ in range(2)]
    poisoned = await confirmed_pledge(service, poisoned_need)
    healthy = [await confirmed_pledge(service, need_id) for need_id in healthy_needs]
    # A pledge accepted before dates were bounded: its deadline (the planned day + grace) is past year 9999.
    ledgers = service.parts.runtime.db["ledgers"]
    planted = await ledgers.update_one({"_id": poisoned_need, "pledges.pledge_id": poisoned},
                                       {"$set": {"pledges.$.planned_date": "9999-12-31"}})
    assert planted.modified_count == 1

    service.clock.advance(timedelta(days=10))  # every healthy pledge is long past its dispatch deadline
    counts = await service.parts.ledger.sweep_expiry()
    assert counts["expired"] == 2, "the healthy needs were swept although one need cannot be"
    donor = service.auth("donor", subject="donor-1")
    for pledge_id in healthy:
        got = (await service.client.get(f"/v1/pledges/{pledge_id}", headers=donor)).json()
        assert (got["status"], got["reason"]) == ("expired", "not_dispatched")
    assert (await service.client.get(f"/v1/pledges/{poisoned}", headers=donor)).json()["status"] == "confirmed"

    await service.parts.ledger.sweep_expiry()  # the next pass tries again, and counts it again
    stuck = await service.parts.runtime.stuck.listing("pledge-expiry")
    assert [(s["item_id"], s["failures"]) for s in stuck] == [(poisoned_need, 2)]
    assert "OverflowError" in stuck[0]["error"]

    # An operator finds it with the admin command.
    command = [sys.executable, "-m", "ksbb_kit.cli", "jobs", "stuck", "pledges", "--prefix", service.namespace,
               "--mongodb", service.infra.mongodb_url]
    listed = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60,
                                     env=os.environ.copy())
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(line["job"], line["item_id"]) for line in lines] == [("pledge-expiry", poisoned_need)]

    # Once repaired, the need is swept again and its marker goes.
    await ledgers.update_one({"_id": poisoned_need, "pledges.pledge_id": poisoned},
                             {"$set": {"pledges.$.planned_date": service.clock.now().date().isoformat()}})
    service.clock.advance(timedelta(days=2))
    assert (await service.parts.ledger.sweep_expiry())["expired"] == 1
    assert await service.parts.runtime.stuck.listing("pledge-expiry") == []
