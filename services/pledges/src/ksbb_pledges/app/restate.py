"""Anti-entropy for the need ledgers: re-publish each ledger's current state, a page per run.

Consumers (registry, publisher) apply a `restated` ledger event whenever their figures differ, so any view
that diverged — a database crash that lost acknowledged writes, a bug, a manual edit — is repaired within
one full pass. The pages, the cursor and the item isolation are the kit's `RestatePass`; this module says
what restating one ledger means.
"""

from __future__ import annotations

from ksbb_kit.clock import Clock
from ksbb_kit.jobs import StuckItems
from ksbb_kit.restate_pages import RestateOne, RestatePass

from ksbb_pledges.app.ports import LedgerStore, RestatePages
from ksbb_pledges.domain.restate import restate

LEDGERS_JOB = "ledger-restate"


def restating_ledgers(store: LedgerStore, clock: Clock) -> RestateOne:
    """Publish one ledger's current state (in order with its changes); False for a ledger never announced."""

    async def restate_ledger(need_id: str) -> bool:
        return await store.apply(need_id, lambda ledger: restate(ledger, clock.now()))

    return restate_ledger


def ledger_restatement_job(
    store: LedgerStore, pages: RestatePages, clock: Clock, *, page_size: int, stuck: StuckItems | None = None
) -> RestatePass:
    """The anti-entropy job of the ledgers (`ksbb.need_ledger.changed.v1` with `restated`)."""
    return RestatePass(pages, restating_ledgers(store, clock), job=LEDGERS_JOB, page_size=page_size, stuck=stuck)
