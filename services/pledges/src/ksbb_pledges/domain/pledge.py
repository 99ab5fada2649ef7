"""A pledge as its need's ledger holds it (pure): first reservation, moves with their audit trail, public view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ksbb_contracts.events.pledges import PledgePublic
from ksbb_contracts.limits import HORIZON_DAYS, latest_allowed
from ksbb_contracts.vocab import PledgeStatus

from ksbb_pledges.domain.errors import PlannedDatePast, PlannedDateTooFar

#: A ledger document (need facts, quantities, `rev`, embedded `pledges`) and one embedded pledge.
Ledger = dict[str, Any]
Pledge = dict[str, Any]


def new_pledge(
    *,
    pledge_id: str,
    donor_id: str,
    quantity: int,
    mode: str,
    planned_date: date,
    now: datetime,
    request_hash: str,
    offer_id: str | None = None,
    note: str | None = None,
) -> Pledge:
    """A pledge as first reserved."""
    return {
        "pledge_id": pledge_id,
        "donor_id": donor_id,
        "quantity": quantity,
        "delivered_quantity": None,
        "mode": mode,
        "planned_date": planned_date.isoformat(),
        "status": PledgeStatus.PLEDGED.value,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "request_hash": request_hash,
        "offer_id": offer_id,
        "note": note,
        "reason": None,
        "proof_ref": None,
        "reminded_stage": None,
        "history": [{"status": PledgeStatus.PLEDGED.value, "at": now, "by": "donor"}],
    }


def advance(pledge: Pledge, status: PledgeStatus, now: datetime, by: str, **facts: Any) -> Pledge:
    """A copy of a pledge moved to a new state, with its audit entry."""
    entry = {"status": status.value, "at": now, "by": by}
    entry.update({k: v for k, v in facts.items() if k in ("reason", "received_quantity", "proof_ref")})
    return {
        **pledge,
        **facts,
        "status": status.value,
        "version": pledge["version"] + 1,
        "updated_at": now,
        f"{status.value}_at": now,
        "history": [*pledge.get("history", []), entry],
    }


def same_request(held: Pledge, retried: Pledge) -> bool:
    """Whether a retried create asks for the pledge held under its id: the same request fingerprint, or —
    for a pledge taken back from its event, whose fingerprint is unknown — the same quantity, mode and date."""
    if held.get("request_hash") is not None or not held.get("recovered_at"):
        return bool(held.get("request_hash") == retried["request_hash"])
    return all(held.get(name) == retried.get(name) for name in ("quantity", "mode", "planned_date"))


def pledge_public(ledger: Ledger, pledge: Pledge) -> PledgePublic:
    """The public event view of a pledge."""
    return PledgePublic(
        pledge_id=pledge["pledge_id"],
        need_id=ledger["_id"],
        recipient_id=ledger["recipient_id"],
        organisation_id=ledger["organisation_id"],
        donor_id=pledge["donor_id"],
        kelurahan_code=ledger["kelurahan_code"],
        item=ledger["item"],
        quantity=pledge["quantity"],
        delivered_quantity=pledge.get("delivered_quantity"),
        mode=pledge["mode"],
        planned_date=date.fromisoformat(pledge["planned_date"]),
        status=pledge["status"],
        version=pledge["version"],
    )


def check_planned_date(planned_date: date, today: date) -> None:
    """A delivery is planned from today up to the programme's horizon (never for a day already gone)."""
    if planned_date < today:
        raise PlannedDatePast()
    if planned_date > latest_allowed(today):
        raise PlannedDateTooFar(HORIZON_DAYS)
