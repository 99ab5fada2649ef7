"""Anti-entropy (pure): re-announcing a ledger's figures or a pledge's state so every consumer repairs its view."""

from __future__ import annotations

from datetime import datetime

from ksbb_contracts.events.pledges import NeedLedgerChanged, PledgeRestated, ledger_figures_digest

from ksbb_pledges.domain.ledger import LedgerChange, unchanged
from ksbb_pledges.domain.pledge import Ledger, Pledge, pledge_public


def restatement(ledger: Ledger, now: datetime) -> NeedLedgerChanged | None:
    """The ledger's current state as a `restated` event (None for a ledger never announced)."""
    version = int(ledger.get("ledger_version", 0))
    if version < 1:
        return None
    figures = [int(ledger[k]) for k in ("requested", "committed", "in_transit", "delivered")]
    return NeedLedgerChanged(
        need_id=ledger["_id"],
        recipient_id=ledger["recipient_id"],
        requested=figures[0],
        committed=figures[1],
        in_transit=figures[2],
        delivered=figures[3],
        ledger_version=version,
        need_status=ledger["status"],
        occurred_at=now,
        ledger_digest=ledger_figures_digest(*figures),
        restated=True,
    )


def restate(ledger: Ledger, now: datetime) -> LedgerChange[bool]:
    """A change that only publishes the ledger's current state (figures and version untouched).

    It is written like any decision — guarded by the revision it read, its event in the same write — so it
    is published in order with the ledger's changes and can never overtake a newer one.
    """
    event = restatement(ledger, now)
    if event is None:
        return unchanged(False)
    return LedgerChange(result=True, set_fields={"restated_at": now}, events=[event])


def pledge_restatement(ledger: Ledger, pledge: Pledge, now: datetime) -> PledgeRestated:
    """A pledge's current public state as `ksbb.pledge.restated.v1`, with its digest."""
    public = pledge_public(ledger, pledge)
    event = PledgeRestated(pledge=public, occurred_at=now)
    return event.model_copy(update={"state_digest": event.pledge_digest()})


def restate_pledge(ledger: Ledger, pledge_id: str, now: datetime) -> LedgerChange[bool]:
    """A change of the pledge's ledger that only publishes the pledge's current state (nothing else moves).

    `ledger` is read focused on the pledge (live, leaving or settled in its copy). Written like any decision
    on the ledger — guarded by its revision, the event in its outbox — so the restatement is published in
    order with the pledge's own events and never overtakes a newer one.
    """
    pledge = next((p for p in ledger.get("pledges", []) if p["pledge_id"] == pledge_id), None)
    if pledge is None:
        return unchanged(False)
    event = pledge_restatement(ledger, pledge, now)
    return LedgerChange(result=True, set_fields={"pledge_restated_at": now}, events=[event])
