"""Pledges the database lost after their events were out: read back from the pledge topic and taken back.

The pledges service follows its own pledge topic (`ksbb_kit.followers`), each event once it is older than
the database's durability window. A pledge whose copy is at the announced version (the usual case: one
read for a whole batch) is known; any other is checked on its ledger and, when the ledger lost it, taken
back from the event (`domain.recovery`), which every view hears of.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ksbb_contracts import EVENT_TYPES, CloudEvent, Event, topics
from ksbb_contracts.events.pledges import PledgeExpiring
from ksbb_kit.clock import Clock
from ksbb_kit.repairs import note_repair

from ksbb_pledges.app.ports import LedgerStore, PledgeCopies
from ksbb_pledges.domain.recovery import KNOWN, recover

#: The pledge events whose state the ledger must hold: every type of the pledge topic but the reminder
#: (`PledgeExpiring` moves nothing), so a lifecycle event added later is followed without a change here.
ANNOUNCING = tuple(t for t in EVENT_TYPES.values() if t.topic is topics.PLEDGES and t is not PledgeExpiring)
#: The follower's job name (its consumer group suffix, its stuck-item markers).
RECOVERY_JOB = "pledge-recovery"
#: How the recovered view is named in `ksbb_view_repairs_total`.
RECOVERED_VIEW = "pledges.ledger.pledges"


def pledge_of(event: Event) -> str:
    """The pledge an announcing event is about."""
    announcing: Any = event  # every ANNOUNCING type carries the pledge's public state
    return str(announcing.pledge.pledge_id)


class PledgeRecovery:
    """Checks announced pledges against the ledgers and takes back what a crash lost."""

    def __init__(self, store: LedgerStore, copies: PledgeCopies, clock: Clock) -> None:
        self.store = store
        self.copies = copies
        self.clock = clock

    async def check(self, events: Sequence[tuple[Event, CloudEvent]]) -> dict[str, BaseException]:
        """Check a batch of announced pledges; the ones that failed, by pledge id (the rest were done)."""
        latest: dict[str, Any] = {}
        for event, _ in events:
            announcing: Any = event  # every ANNOUNCING type carries the pledge's public state
            held = latest.get(pledge_of(event))
            if held is None or held.pledge.version <= announcing.pledge.version:
                latest[pledge_of(event)] = announcing
        copied = await self.copies.versions(list(latest))
        failures: dict[str, BaseException] = {}
        for pledge_id, event in latest.items():
            if copied.get(pledge_id, 0) >= event.pledge.version:
                continue
            try:
                await self.recover(event)
            except Exception as exc:
                failures[pledge_id] = exc
        return failures

    async def recover(self, event: Any) -> str:
        """Check one announced pledge on its ledger; take it back when lost. The outcome (`domain.recovery`)."""
        announced = event.pledge
        outcome: str = await self.store.apply(
            announced.need_id,
            lambda ledger: recover(ledger, announced, reason=getattr(event, "reason", None),
                                   occurred_at=event.occurred_at, now=self.clock.now()),
            focus=announced.pledge_id,
        )
        if outcome != KNOWN:
            note_repair(RECOVERED_VIEW, announced.pledge_id, f"lost_after_announced_{outcome}")
        return outcome
