"""Expiry survives a restart: state lives in MongoDB, time comes from the injected clock (no sleeping)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ksbb_contracts.events.registry import NeedOpened
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.kafka import TopicReader, publish_events
from ksbb_kit.testing.plugin import running
from ksbb_kit.testing.waiting import eventually
from ksbb_pledges.bootstrap import compose, create_app
from ksbb_pledges.settings import PledgesSettings

pytestmark = pytest.mark.integration


async def test_pledges_expire_after_restart(kit_env: dict[str, Any], dev_issuer: DevIssuer, service: Any) -> None:
    settings = PledgesSettings(**{**kit_env, "sweep_interval_seconds": 3600})
    start = service.clock.now()
    clock = ManualClock(start)
    donor = {"authorization": f"Bearer {dev_issuer.token('donor', subject='donor-exp')}"}
    recipient = {"authorization": f"Bearer {dev_issuer.token('recipient', recipient_id='rcp_a')}"}
    planned = start.date() + timedelta(days=3)

    async with running(create_app(settings, clock=clock)) as client:
        await publish_events(
            kit_env["kafka_bootstrap"],
            kit_env["topic_prefix"],
            [NeedOpened(need=service.need("ned_exp", quantity=10), occurred_at=start)],
        )

        async def known() -> bool:
            return (await client.get("/v1/needs/ned_exp/ledger")).status_code == 200

        await eventually(known, what="ledger")
        body = {"need_id": "ned_exp", "quantity": 3, "planned_date": planned.isoformat()}
        unconfirmed = (await client.post("/v1/pledges", json=body, headers=donor)).json()["pledge_id"]
        undispatched = (await client.post("/v1/pledges", json=body, headers=donor)).json()["pledge_id"]
        confirmed = await client.post(f"/v1/pledges/{undispatched}/confirm", headers=recipient)
        assert confirmed.json()["status"] == "confirmed"

    # A new process: nothing in memory survives; the deadlines come from the stored pledges.
    restarted = compose(settings, clock=clock)
    async with (
        running(restarted.app) as client,
        TopicReader(kit_env["kafka_bootstrap"], [kit_env["topic_prefix"] + "ksbb.pledges.pledges"]) as reader,
    ):
        ledgers = restarted.ledger
        clock.advance(timedelta(hours=35))
        assert await ledgers.sweep_expiry() == {"expired": 0, "reminded": 0}
        clock.advance(timedelta(hours=2))  # 37 h: within 12 h of the 48 h confirmation window
        assert await ledgers.sweep_expiry() == {"expired": 0, "reminded": 1}
        assert await ledgers.sweep_expiry() == {"expired": 0, "reminded": 0}  # reminded once only
        clock.advance(timedelta(hours=11))  # 48 h
        assert await ledgers.sweep_expiry() == {"expired": 1, "reminded": 0}
        got = (await client.get(f"/v1/pledges/{unconfirmed}", headers=donor)).json()
        assert (got["status"], got["reason"]) == ("expired", "not_confirmed")
        assert (await client.get("/v1/needs/ned_exp/ledger")).json()["committed"] == 3
        # The confirmed one may wait until the end of its planned day plus the 24 h grace.
        clock.set(start.replace(hour=0) + timedelta(days=4, hours=24) - timedelta(minutes=1))
        assert (await ledgers.sweep_expiry())["expired"] == 0
        clock.advance(timedelta(minutes=2))
        assert (await ledgers.sweep_expiry())["expired"] == 1
        got = (await client.get(f"/v1/pledges/{undispatched}", headers=donor)).json()
        assert (got["status"], got["reason"]) == ("expired", "not_dispatched")
        assert (await client.get("/v1/needs/ned_exp/ledger")).json()["committed"] == 0
        envelopes = await reader.wait_for(lambda es: len([e for e in es if e.type == "ksbb.pledge.expired.v1"]) == 2)
        expiring = [e for e in envelopes if e.type == "ksbb.pledge.expiring.v1"]
        assert [e.subject for e in expiring if e.subject == unconfirmed] == [unconfirmed]
        assert expiring[0].data["expires_at"].startswith((start + timedelta(hours=48)).date().isoformat())
