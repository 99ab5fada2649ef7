"""The anti-entropy job re-publishes every announced ledger, a page at a time, in order with its changes."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_contracts.events.pledges import NeedLedgerChanged
from ksbb_kit.restate_pages import MongoRestatePages
from ksbb_kit.testing.kafka import TopicReader
from ksbb_pledges.app.restate import ledger_restatement_job

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
