"""Concurrent creates on one need inside one process queue for the need instead of racing each other."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ksbb_kit.outbox import MARKERS, marker_id
from ksbb_kit.testing.waiting import eventually
from ksbb_pledges.adapters.ledgers import MAX_DECISION_ATTEMPTS

pytestmark = pytest.mark.integration

#: As many creates at once as the pledges benchmark sends to its hot need.
AT_ONCE = 16


async def decisions_redone(service: Any) -> float:
    """Ledger decisions this process decided again after another writer won the revision guard, so far."""
    page = (await service.client.get("/metrics")).text
    prefix = 'ksbb_ledger_decisions_redone_total{reason="revision"}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line.startswith(prefix))


async def test_concurrent_creates_on_one_need_never_lose_the_revision_guard_to_each_other(service: Any) -> None:
    need_id = await service.open_need(quantity=AT_ONCE * 2)
    before = await decisions_redone(service)

    created = await asyncio.gather(*(service.pledge(need_id, 2, donor=f"donor-at-once-{n}") for n in range(AT_ONCE)))

    assert [r.status_code for r in created] == [201] * AT_ONCE, [r.text for r in created if r.status_code != 201]
    assert len({r.json()["pledge_id"] for r in created}) == AT_ONCE
    assert (await service.ledger_or_none(need_id) or {})["committed"] == AT_ONCE * 2
    assert await decisions_redone(service) == before, "creates of one process raced each other on the ledger"


async def test_a_create_queued_behind_a_busy_need_has_left_its_outbox_marker_already(service: Any) -> None:
    """The marker goes out before a create queues for its need, so the need's lock covers one write alone."""
    need_id = await service.open_need(quantity=4)
    markers = service.parts.runtime.db[MARKERS]
    busy = asyncio.Lock()
    # Another create of this process holding the need (what a hot need looks like from the next one).
    service.parts.ledger_store._need_locks[need_id] = busy
    await busy.acquire()
    queued = asyncio.create_task(service.pledge(need_id, 1, donor="donor-queued"))
    try:
        marker = await eventually(lambda: markers.find_one({"_id": marker_id("ledgers", need_id), "open": 1}),
                                  what="the queued create's outbox marker")
        assert not queued.done()
    finally:
        busy.release()
    assert (await queued).status_code == 201
    assert (await service.ledger_or_none(need_id) or {})["committed"] == 1
    # Published and released like any other write: the marker of this one writer goes once its event is out.
    await eventually(lambda: _gone(markers, marker["_id"]), what="the marker dropped after publishing")


async def _gone(markers: Any, marker: str) -> bool | None:
    return True if await markers.find_one({"_id": marker}) is None else None


class OvertakenEveryTime:
    """The ledgers collection as seen when another process writes each ledger right before this one does:
    every guarded write finds the revision moved on (the real collection underneath takes both writes)."""

    def __init__(self, ledgers: Any) -> None:
        self._ledgers = ledgers
        self.overtaken = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledgers, name)

    async def update_one(self, guard: dict[str, Any], update: Any, **options: Any) -> Any:
        await self._ledgers.update_one({"_id": guard["_id"]}, {"$inc": {"rev": 1}})
        self.overtaken += 1
        return await self._ledgers.update_one(guard, update, **options)


async def test_a_create_always_overtaken_gives_up_with_503_and_frees_the_need(service: Any) -> None:
    """A decision never holds its need forever: after its attempts it answers 503 and the next one gets in."""
    need_id = await service.open_need(quantity=4)
    store = service.parts.ledger_store
    real = store.ledgers
    overtaking = store.ledgers = OvertakenEveryTime(real)
    try:
        refused = await asyncio.wait_for(service.pledge(need_id, 1, donor="donor-overtaken"), timeout=60)
    finally:
        store.ledgers = real
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["code"] == "ledger_busy"
    assert overtaking.overtaken == MAX_DECISION_ATTEMPTS, "every attempt was tried, none more"
    assert (await service.ledger_or_none(need_id) or {})["committed"] == 0, "nothing of the refused create stayed"
    accepted = await asyncio.wait_for(service.pledge(need_id, 1, donor="donor-next"), timeout=60)
    assert accepted.status_code == 201, accepted.text
    assert (await service.ledger_or_none(need_id) or {})["committed"] == 1
