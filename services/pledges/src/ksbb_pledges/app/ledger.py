"""Need ledgers: reading them, reserving pledges on them, and the sweeps that keep them current."""

from __future__ import annotations

from datetime import datetime, timedelta

from ksbb_kit.auth import Principal
from ksbb_kit.clock import Clock
from ksbb_kit.jobs import StuckItems, for_each_item

from ksbb_pledges.app.access import check_sees_recipient
from ksbb_pledges.app.ports import LedgerStore, PledgeCopies
from ksbb_pledges.domain.errors import NeedNotFound
from ksbb_pledges.domain.ledger import LedgerChange, Reservation, expire, needs_expiry_pass, reserve
from ksbb_pledges.domain.lifecycle import ExpiryPolicy
from ksbb_pledges.domain.pledge import Ledger, Pledge


class LedgerService:
    """Reads ledgers, reserves pledges atomically, expires overdue pledges and repairs pledge copies."""

    def __init__(
        self,
        store: LedgerStore,
        copies: PledgeCopies,
        clock: Clock,
        policy: ExpiryPolicy,
        *,
        copy_lookback: timedelta,
        stuck: StuckItems | None = None,
    ) -> None:
        self.store = store
        self.stuck = stuck
        self.copies = copies
        self.clock = clock
        self.policy = policy
        self.copy_lookback = copy_lookback
        self._full_copy_scan_done = False

    async def ledger(self, need_id: str) -> Ledger:
        """A need's ledger (public quantities); NeedNotFound while the registry's event has not arrived."""
        ledger = await self.store.get(need_id)
        if ledger is None:
            raise NeedNotFound(need_id)
        return ledger

    async def with_pledges(self, need_id: str, principal: Principal) -> Ledger:
        """A need's ledger with every pledge it ever had, for the recipient, its facilitators and admins."""
        ledger = await self.ledger(need_id)
        check_sees_recipient(principal, ledger["recipient_id"], ledger["organisation_id"])
        return {**ledger, "pledges": await self.store.pledges_of_need(need_id)}

    async def reserve(
        self,
        need_id: str,
        pledge: Pledge,
        *,
        allow_partial: bool = False,
        has_copy: bool = True,
        new_id: bool = False,
    ) -> Reservation:
        """Reserve a new pledge on a need's ledger (or find it again when the create is retried).

        `has_copy=False` says no per-pledge copy of this id exists (so a settled pledge of that id cannot
        exist either); `new_id` says the id was just made up, so no pledge of that id exists anywhere.
        """

        def decide(ledger: Ledger) -> LedgerChange[Reservation]:
            return reserve(ledger, pledge, now=self.clock.now(), allow_partial=allow_partial)

        return await self.store.apply(
            need_id, decide, focus=pledge["pledge_id"], look_in_copies=has_copy, new_pledge=new_id
        )

    async def sweep_expiry(self) -> dict[str, int]:
        """Expire overdue pledges and remind donors of pledges about to expire; durable (state in the store)."""
        counts = {"expired": 0, "reminded": 0}
        now = self.clock.now()

        async def expire_need(waiting: tuple[str, list[Pledge]]) -> list[str]:
            need_id, pledges = waiting
            if not needs_expiry_pass(pledges, now, self.policy):
                return []
            return await self.store.apply(need_id, lambda ledger: expire(ledger, now, self.policy))

        # Need by need: one ledger that cannot be expired (a date out of range) is marked stuck, not the sweep.
        run = await for_each_item(self.store.waiting_pledges(), expire_need, job="pledge-expiry",
                                  item_id=lambda waiting: waiting[0], stuck=self.stuck)
        for done in run.results:
            for action in done:
                counts[action] += 1
        return counts

    async def sweep_copies(self, *, since: datetime | None = None) -> int:
        """Repair pledge copies a crash left behind their ledger, of ledgers changed after `since` (None: all)."""
        return await self.copies.repair(since=since)

    async def sweep(self) -> None:
        """The periodic pass: expiry, then copy repair.

        The first pass after a start repairs every ledger (covering any downtime); later passes only the
        recently changed ones, with a wide margin over the sweep interval.
        """
        await self.sweep_expiry()
        since = self.clock.now() - self.copy_lookback if self._full_copy_scan_done else None
        await self.sweep_copies(since=since)
        self._full_copy_scan_done = True
