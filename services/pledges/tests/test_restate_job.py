"""The anti-entropy jobs re-publish every announced ledger and every pledge, a page at a time, in order with their
changes; one item that raises is marked stuck and the others go on."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_contracts.events.pledges import NeedLedgerChanged, PledgeRestated
from ksbb_kit.restate_pages import MongoRestatePages
from ksbb_kit.testing.kafka import TopicReader
from ksbb_kit.testing.waiting import eventually
from ksbb_pledges.app.restate import ledger_restatement_job, pledge_restatement_job

from .conftest import Service

pytestmark = pytest.mark.integration


async def test_pages_cover_every_ledger_once_per_pass_and_restated_events_carry_the_current_state(
    service: Service,
) -> None:
    needs = sorted([await service.open_need(quantity=20) for _ in range(5)])
    for index, need_id in enumerate(needs):
        assert (await service.pledge(need_id, index + 1, donor=f"donor-{index}")).status_code == 201
    db = service.parts.runtime.db
    pages = MongoRestatePages(db, "ledgers", job="restate-test")
    job = ledger_restatement_job(service.parts.ledger_store, pages, service.clock, page_size=2)
    ledger_topic = service.settings.topic("ksbb.pledges.ledger")
    async with TopicReader(service.infra.kafka_bootstrap, [ledger_topic]) as reader:
        # 5 ledgers, 2 per page: 2 full pages, then the last one, which ends the pass.
        assert sorted([doc["_id"] async for doc in db.ledgers.find({}, {"_id": 1})]) == needs
        runs = [await job.run_page() for _ in range(3)]
        assert runs == [(2, False), (2, False), (1, True)]
        assert await pages.cursor() is None  # the next pass starts again from the first ledger
        assert await job.run_page() == (2, False)

        def restated(envelopes: list[Any]) -> bool:
            return {e.subject for e in envelopes if e.data.get("restated")} >= set(needs)

        envelopes = await reader.wait_for(restated, timeout=60)
    for index, need_id in enumerate(needs):
        ledger = await service.ledger_or_none(need_id)
        assert ledger is not None
        latest = [NeedLedgerChanged.model_validate(e.data) for e in envelopes if e.subject == need_id][-1]
        assert latest.restated, "the restatement is the last ledger event of an unchanged need"
        assert (latest.ledger_version, latest.committed) == (ledger["ledger_version"], index + 1)
        assert latest.ledger_digest == latest.figures_digest()


async def test_each_pledge_is_restated_in_its_current_state_and_a_poisoned_one_is_marked_stuck(
    service: Service,
) -> None:
    need_id = await service.open_need(quantity=30)
    answered = [await service.pledge(need_id, quantity, donor=f"donor-r{quantity}") for quantity in (2, 3, 4)]
    assert [a.status_code for a in answered] == [201, 201, 201]
    healthy, other, poisoned = [a.json()["pledge_id"] for a in answered]
    db = service.parts.runtime.db

    async def copied() -> bool:
        return await db.pledges.count_documents({"_id": {"$in": [healthy, other, poisoned]}}) == 3

    await eventually(copied, within=30, what="every pledge has its copy")
    # A pledge an old version left invalid (no public state can be made of it) must not stop the others.
    await db.ledgers.update_one({"_id": need_id, "pledges.pledge_id": poisoned}, {"$set": {"pledges.$.quantity": 0}})
    stuck = service.parts.runtime.stuck
    job = pledge_restatement_job(service.parts.ledger_store, MongoRestatePages(db, "pledges", job="pledge-test"),
                                 service.clock, page_size=10, stuck=stuck)
    assert await job.restate("plg_unknown") is False
    pledges_topic = service.settings.topic("ksbb.pledges.pledges")
    async with TopicReader(service.infra.kafka_bootstrap, [pledges_topic]) as reader:
        # Every pledge of this service's database (earlier tests' too) but the poisoned one.
        assert await job.run_pass() == await db.pledges.count_documents({}) - 1

        def restated(envelopes: list[Any]) -> bool:
            return {e.subject for e in envelopes if e.type == PledgeRestated.event_type} >= {healthy, other}

        envelopes = await reader.wait_for(restated, timeout=60)
    assert await stuck.item_ids("pledge-restate") == {poisoned}
    for pledge_id, quantity in ((healthy, 2), (other, 3)):
        event = [PledgeRestated.model_validate(e.data) for e in envelopes
                 if e.subject == pledge_id and e.type == PledgeRestated.event_type][-1]
        assert (event.pledge.quantity, event.pledge.version, event.pledge.status.value) == (quantity, 1, "pledged")
        assert event.restated and event.state_digest == event.pledge_digest()
    assert not [e for e in envelopes if e.subject == poisoned and e.type == PledgeRestated.event_type]
