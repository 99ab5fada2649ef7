"""Anti-entropy for needs and recipients: re-publish each one's current public state, a page per run.

Consumers (the publisher's read models, the pledges service's replicas) apply a `restated` event whenever
their view differs, so any view that diverged is repaired within one full pass. A page is a range of `_id`s
after a stored cursor (no scan of every document per run); at the end of a collection the pass starts again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ksbb_contracts import Event
from ksbb_kit.jobs import StuckItems, for_each_item

from ksbb_registry.app.ports import AggregateStore, RestatePages
from ksbb_registry.domain.restate import need_restatement, recipient_restatement

NEEDS_JOB = "need-restate"
RECIPIENTS_JOB = "recipient-restate"


class Restatement:
    """Re-publishes one collection's aggregates (`restated` events at their current version), item by item."""

    def __init__(
        self,
        store: AggregateStore[Any],
        pages: RestatePages,
        announce: Callable[[Any], Event],
        *,
        job: str,
        page_size: int,
        stuck: StuckItems | None = None,
    ) -> None:
        self.store = store
        self.pages = pages
        self.announce = announce
        self.job = job
        self.page_size = page_size
        self.stuck = stuck

    async def restate(self, aggregate_id: str) -> bool:
        """Publish one aggregate's current state (in order with its changes); False when it is gone."""
        return await self.store.restate(aggregate_id, self.announce)

    async def run_page(self) -> tuple[int, bool]:
        """Restate the next page; returns (aggregates restated, whether the pass reached the end)."""
        ids = await self.pages.ids_after(await self.pages.cursor(), self.page_size)
        run = await for_each_item(ids, self.restate, job=self.job, item_id=str, stuck=self.stuck)
        finished = len(ids) < self.page_size
        await self.pages.save_cursor(None if finished else ids[-1])
        return sum(run.results), finished

    async def run_pass(self) -> int:
        """Restate every aggregate from where the last page stopped to the end (tests, operators)."""
        total = 0
        while True:
            restated, finished = await self.run_page()
            total += restated
            if finished:
                return total


def need_restatement_job(
    store: AggregateStore[Any], pages: RestatePages, *, page_size: int, stuck: StuckItems | None = None
) -> Restatement:
    """The anti-entropy job of needs (`ksbb.need.changed.v1`, restated)."""
    return Restatement(store, pages, need_restatement, job=NEEDS_JOB, page_size=page_size, stuck=stuck)


def recipient_restatement_job(
    store: AggregateStore[Any], pages: RestatePages, *, page_size: int, stuck: StuckItems | None = None
) -> Restatement:
    """The anti-entropy job of recipients (`ksbb.recipient.updated.v1`, restated)."""
    return Restatement(store, pages, recipient_restatement, job=RECIPIENTS_JOB, page_size=page_size, stuck=stuck)
