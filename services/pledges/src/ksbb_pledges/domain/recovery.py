"""Recovering pledges the ledger lost (pure): what the pledge's own event announced is taken back from it.

A database that crashes can lose writes it had acknowledged, after the outbox relay already published their
events: the donor got 201, the NGO a webhook, the public feed shows the pledge, yet the ledger no longer
knows it. Nothing accepted may be lost, so the ledger takes the pledge back from its announced state. When
the units it held were meanwhile pledged by others (or the need closed, or its recipient was suspended), it
cannot be kept: it is taken back as cancelled (`NOT_KEPT_REASON`), which tells the donor and every view.
A lost move of a pledge the ledger still holds (e.g. a confirmation) is taken back the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ksbb_contracts.events.pledges import PledgeCancelled, PledgePublic
from ksbb_contracts.vocab import NeedStatus, PledgeStatus

from ksbb_pledges.domain.bounds import MAX_LIVE_PLEDGES
from ksbb_pledges.domain.ledger import LedgerChange, held_pledges, is_live, remaining, settle, unchanged
from ksbb_pledges.domain.lifecycle import CANCELLED
from ksbb_pledges.domain.pledge import Ledger, Pledge, advance, pledge_public
from ksbb_pledges.domain.restate import pledge_restatement

#: Why a recovered pledge could not be kept (its units were pledged by others while it was lost).
NOT_KEPT_REASON = "lost_in_outage"
#: Outcomes of one recovery.
KNOWN, RECOVERED, MOVE_RECOVERED, NOT_KEPT = "known", "recovered", "move_recovered", "not_kept"


def recover(
    ledger: Ledger, announced: PledgePublic, *, reason: str | None, occurred_at: datetime, now: datetime
) -> LedgerChange[str]:
    """Take back a pledge (or its last move) that the ledger's own event announced and the ledger lost.

    `ledger` is read focused on the pledge (live, leaving or settled in its copy). A pledge held at the
    announced version or later is known (nothing to do); a settled one never moves again.
    """
    held = next((p for p in ledger.get("pledges", []) if p["pledge_id"] == announced.pledge_id), None)
    if held is not None:
        if int(held["version"]) >= announced.version or not is_live(held):
            return unchanged(KNOWN)
        moved = restored(held, announced, reason=reason, occurred_at=occurred_at, now=now)
        change = LedgerChange(
            result=MOVE_RECOVERED, replaced=(held, moved), changed_pledge_ids={held["pledge_id"]},
            events=[pledge_restatement(ledger, moved, now)],
        )
        return settle(ledger, change, now)
    pledge = restored(None, announced, reason=reason, occurred_at=occurred_at, now=now)
    if is_live(pledge) and not fits(ledger, pledge):
        pledge = advance(pledge, CANCELLED, now, "system", reason=NOT_KEPT_REASON)
        change = LedgerChange(
            result=NOT_KEPT, appended=pledge, changed_pledge_ids={pledge["pledge_id"]},
            events=[PledgeCancelled(pledge=pledge_public(ledger, pledge), occurred_at=now, reason=NOT_KEPT_REASON)],
        )
    else:
        change = LedgerChange(
            result=RECOVERED, appended=pledge, changed_pledge_ids={pledge["pledge_id"]},
            events=[pledge_restatement(ledger, pledge, now)],
        )
    return settle(ledger, change, now)


def fits(ledger: Ledger, pledge: Pledge) -> bool:
    """Whether a live pledge taken back can hold its units: the need open, its recipient not blocked, the
    units still there and room for one more live pledge."""
    return (
        ledger["status"] == NeedStatus.OPEN.value
        and not ledger.get("recipient_blocked")
        and int(pledge["quantity"]) <= remaining(ledger)
        and held_pledges(ledger) < MAX_LIVE_PLEDGES
    )


def restored(
    held: Pledge | None, announced: PledgePublic, *, reason: str | None, occurred_at: datetime, now: datetime
) -> Pledge:
    """The pledge in its announced state, kept what the ledger still knows of it (request hash, note, trail)."""
    base: dict[str, Any] = dict(held or {})
    status = PledgeStatus(announced.status)
    entry: dict[str, Any] = {"status": status.value, "at": occurred_at, "by": "system", "recovered": True}
    if reason is not None:
        entry["reason"] = reason
    pledge: Pledge = {
        "request_hash": None,
        "offer_id": None,
        "note": None,
        "proof_ref": None,
        "reminded_stage": None,
        "created_at": occurred_at,
        **base,
        "pledge_id": announced.pledge_id,
        "donor_id": announced.donor_id,
        "quantity": announced.quantity,
        "delivered_quantity": announced.delivered_quantity,
        "mode": announced.mode.value,
        "planned_date": announced.planned_date.isoformat(),
        "status": status.value,
        "version": announced.version,
        "reason": reason if reason is not None else base.get("reason"),
        "updated_at": occurred_at,
        "recovered_at": now,
        "history": [*base.get("history", []), entry],
    }
    if status is not PledgeStatus.PLEDGED:
        pledge[f"{status.value}_at"] = occurred_at
    if status is PledgeStatus.DELIVERED:
        pledge["received_quantity"] = announced.delivered_quantity
    return pledge

