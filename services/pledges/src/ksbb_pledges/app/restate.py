"""Anti-entropy for the need ledgers: re-publish each ledger's current state, a page per run.

Consumers (registry, publisher) apply a `restated` ledger event whenever their figures differ, so any view
that diverged — a database crash that lost acknowledged writes, a bug, a manual edit — is repaired within
one full pass. A page is a range of `_id`s after a stored cursor (no scan of every ledger per run); at the
end of the collection the pass starts again from the first ledger.
"""

from __future__ import annotations

from ksbb_kit.clock import Clock
from ksbb_kit.jobs import StuckItems, for_each_item

from ksbb_pledges.app.ports import LedgerStore, RestatePages
from ksbb_pledges.domain.restate import restate

JOB = "ledger-restate"


class LedgerRestatement:
    """Re-publishes ledgers' current figures (`ksbb.need_ledger.changed.v1` with `restated`), item by item."""

    def __init__(
        self, store: LedgerStore, pages: RestatePages, clock: Clock, *, page_size: int, stuck: StuckItems | None = None
    ) -> None:
        self.store = store
        self.pages = pages
        self.clock = clock
        self.page_size = page_size
        self.stuck = stuck

    async def restate(self, need_id: str) -> bool:
        """Publish one ledger's current state (in order with its changes); False for a ledger never announced."""
        return await self.store.apply(need_id, lambda ledger: restate(ledger, self.clock.now()))

    async def run_page(self) -> tuple[int, bool]:
        """Restate the next page of ledgers; returns (ledgers restated, whether the pass reached the end)."""
        ids = await self.pages.ids_after(await self.pages.cursor(), self.page_size)
        run = await for_each_item(ids, self.restate, job=JOB, item_id=str, stuck=self.stuck)
        finished = len(ids) < self.page_size
        await self.pages.save_cursor(None if finished else ids[-1])
        return sum(run.results), finished

    async def run_pass(self) -> int:
        """Restate every ledger from where the last page stopped to the end (tests, operators)."""
        total = 0
        while True:
            restated, finished = await self.run_page()
            total += restated
            if finished:
                return total
