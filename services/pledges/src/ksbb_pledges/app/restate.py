"""Anti-entropy for the need ledgers and the pledges: re-publish each one's current state, a page per run.

Consumers apply a `restated` ledger event (registry, publisher) or a `ksbb.pledge.restated.v1` (publisher)
whenever their view differs, so any view that diverged — a database crash that lost acknowledged writes, a
bug, a manual edit — is repaired within one full pass. The pages, the cursor and the item isolation are
the kit's `RestatePass`; this module says what restating one ledger or one pledge means.
"""

from __future__ import annotations

from ksbb_kit.clock import Clock
from ksbb_kit.jobs import StuckItems
from ksbb_kit.restate_pages import RestateOne, RestatePass

from ksbb_pledges.app.ports import LedgerStore, RestatePages
from ksbb_pledges.domain.restate import restate, restate_pledge

LEDGERS_JOB = "ledger-restate"
#: Pages over the per-pledge collection (every pledge, live or settled, has its copy there).
PLEDGES_JOB = "pledge-restate"


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


def restating_pledges(store: LedgerStore, clock: Clock) -> RestateOne:
    """Publish one pledge's current state through its ledger's outbox; False for a pledge no ledger knows."""

    async def restate_one_pledge(pledge_id: str) -> bool:
        need_id = await store.need_of_pledge(pledge_id)
        if need_id is None:
            return False
        return await store.apply(
            need_id, lambda ledger: restate_pledge(ledger, pledge_id, clock.now()), focus=pledge_id
        )

    return restate_one_pledge


def pledge_restatement_job(
    store: LedgerStore, pages: RestatePages, clock: Clock, *, page_size: int, stuck: StuckItems | None = None
) -> RestatePass:
    """The anti-entropy job of the pledges (`ksbb.pledge.restated.v1`)."""
    return RestatePass(pages, restating_pledges(store, clock), job=PLEDGES_JOB, page_size=page_size, stuck=stuck)
