"""Anti-entropy for the need ledgers, the pledges and the donor profiles: re-publish current state, a page per run.

Consumers apply a `restated` ledger event (registry, publisher), a `ksbb.pledge.restated.v1` or a `restated`
donor profile (publisher) whenever their view differs, so any view that diverged — a database crash that lost
acknowledged writes, a bug, a manual edit — is repaired within one full pass. The pages, the cursor and the
item isolation are the kit's `RestatePass`; this module says what restating one ledger, pledge or donor
profile means.
"""

from __future__ import annotations

from ksbb_kit.clock import Clock
from ksbb_kit.jobs import StuckItems
from ksbb_kit.restate_pages import RestateOne, RestatePass

from ksbb_pledges.app.ports import DonorStore, LedgerStore, RestatePages
from ksbb_pledges.domain.donors import restate_profile
from ksbb_pledges.domain.restate import restate, restate_pledge

LEDGERS_JOB = "ledger-restate"
#: Pages over the per-pledge collection (every pledge, live or settled, has its copy there).
PLEDGES_JOB = "pledge-restate"
#: Pages over the donor profiles (run in the same scheduled job as the pledges).
DONORS_JOB = "donor-restate"


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


def restating_donors(store: DonorStore, clock: Clock) -> RestateOne:
    """Publish one donor's current public profile (`ksbb.donor.profile_updated.v1`, restated)."""

    async def restate_donor(donor_id: str) -> bool:
        return await store.restate(donor_id, lambda current: restate_profile(donor_id, current, clock.now()))

    return restate_donor


def donor_restatement_job(
    store: DonorStore, pages: RestatePages, clock: Clock, *, page_size: int, stuck: StuckItems | None = None
) -> RestatePass:
    """The anti-entropy job of the donor profiles."""
    return RestatePass(pages, restating_donors(store, clock), job=DONORS_JOB, page_size=page_size, stuck=stuck)
