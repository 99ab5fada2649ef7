"""The need ledger's decisions (pure): reservations, lifecycle moves, registry facts and expiry.

A ledger is one document per need: the need's facts, its quantities and its live pledges (the authoritative
copy of each pledge until it settles). A decision reads a ledger as it was and returns a LedgerChange —
the pledge(s) it changes, the fields to set (need facts, quantities, ledger version) and the events that
result. The store writes a change as ONE conditional single-document update guarded by the revision it
read, events included, so a decider that lost a race re-reads and decides again: a need can never be
committed beyond what it requested.

Decisions see a ledger's pledges as one list. The store keeps only the live ones in the document: a pledge
that settles (delivered, cancelled, rejected, expired) leaves it in the same write (into `leaving`) and
moves to the per-pledge collection right after, so a write costs O(live pledges), never O(history). The
quantities are kept by differences, never recounted from the list, and a need holds at most
MAX_LIVE_PLEDGES live + leaving pledges (see `domain.bounds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from ksbb_contracts import Event
from ksbb_contracts.events.pledges import (
    NeedLedgerChanged,
    PledgeCancelled,
    PledgeConfirmed,
    PledgeCreated,
    PledgeDelivered,
    PledgeDispatched,
    PledgeExpired,
    PledgeExpiring,
    PledgeRejected,
    ledger_figures_digest,
)
from ksbb_contracts.events.registry import NeedPublic, public_state_digest
from ksbb_contracts.vocab import NeedStatus, PledgeStatus, RecipientStatus

from ksbb_pledges.domain.bounds import MAX_LIVE_PLEDGES
from ksbb_pledges.domain.errors import (
    IdempotencyKeyReused,
    NeedNotOpen,
    OverPledged,
    ReceivedExceedsPledged,
    RecipientUnavailable,
    TooManyLivePledges,
)
from ksbb_pledges.domain.lifecycle import (
    CANCELLED,
    EXPIRED,
    LIVE,
    RELEASABLE,
    TRANSITIONS,
    ExpiryPolicy,
    Quantities,
    check_transition,
    expiry_decision,
    quantities,
)
from ksbb_pledges.domain.need_replica import need_repair
from ksbb_pledges.domain.pledge import Ledger, Pledge, advance, pledge_public, same_request
from ksbb_pledges.domain.registry_replicas import blocking_repair

R = TypeVar("R")

#: The event each caller-driven transition publishes.
TRANSITION_EVENTS: dict[str, type[Any]] = {
    "confirm": PledgeConfirmed,
    "dispatch": PledgeDispatched,
    "deliver": PledgeDelivered,
    "cancel": PledgeCancelled,
    "reject": PledgeRejected,
}
#: Recipient states that block new pledges and release live ones, with the reason the release records.
BLOCKING_REASONS: dict[str, str] = {
    RecipientStatus.SUSPENDED: "recipient_suspended",
    RecipientStatus.ARCHIVED: "recipient_archived",
}
#: Ledger fields whose change is announced with `ksbb.need_ledger.changed.v1`.
ANNOUNCED = ("requested", "committed", "in_transit", "delivered", "status")


@dataclass
class LedgerChange(Generic[R]):
    """What one decision does to a ledger: pledge changes, fields to set, events, and the caller's result.

    Pledges change in one of three ways: `appended` (a new reservation), `replaced` (one pledge's old
    and new state) or `pledges` (the whole list, for bulk releases and expiry). The first two never move
    the whole list, so a busy need stays cheap to write. A `noop` change writes nothing.
    """

    result: R
    appended: Pledge | None = None
    replaced: tuple[Pledge, Pledge] | None = None
    pledges: list[Pledge] | None = None
    changed_pledge_ids: set[str] = field(default_factory=set)
    set_fields: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    noop: bool = False

    def changed(self) -> list[Pledge]:
        """The pledges in their new state."""
        if self.appended is not None:
            return [self.appended]
        if self.replaced is not None:
            return [self.replaced[1]]
        return [p for p in self.pledges or [] if p["pledge_id"] in self.changed_pledge_ids]

    def departing(self) -> list[Pledge]:
        """The changed pledges that settled: they leave the ledger document for the per-pledge collection."""
        return [p for p in self.changed() if not is_live(p)]

    def applied_to(self, ledger: Ledger) -> Ledger:
        """The ledger as it is after this change (what the store's update makes of it)."""
        if self.noop:
            return ledger
        pledges = list(ledger.get("pledges", []))
        if self.pledges is not None:
            pledges = list(self.pledges)
        elif self.appended is not None:
            pledges.append(self.appended)
        elif self.replaced is not None:
            new = self.replaced[1]
            pledges = [new if p["pledge_id"] == new["pledge_id"] else p for p in pledges]
        return {**ledger, **self.set_fields, "pledges": pledges}


class Reservation(NamedTuple):
    """A reserved pledge with the ledger it was decided on; `replayed` when a retried create found it."""

    ledger: Ledger
    pledge: Pledge
    replayed: bool


def is_live(pledge: Pledge) -> bool:
    """Whether a pledge still holds a reservation on its way to the recipient (pledged, confirmed, dispatched)."""
    return PledgeStatus(pledge["status"]) in LIVE


def held_pledges(ledger: Ledger) -> int:
    """How many pledges the ledger document holds: its live ones and the settled ones still leaving it."""
    return int(ledger.get("live_pledges", 0)) + len(ledger.get("leaving", []))


def unchanged(result: R) -> LedgerChange[R]:
    """A decision that writes nothing."""
    return LedgerChange(result=result, noop=True)


# -- building blocks ----------------------------------------------------------------------------------


def new_ledger(
    need: NeedPublic,
    *,
    recipient_blocked: bool,
    recipient_version: int,
    now: datetime,
    recipient_digest: str | None = None,
) -> Ledger:
    """The ledger of a need seen for the first time; the need's facts arrive with the decision applied to it."""
    return {
        "_id": need.need_id,
        "recipient_id": need.recipient_id,
        "organisation_id": need.organisation_id,
        "kelurahan_code": need.kelurahan_code,
        "item": need.item.value,
        "unit": need.unit,
        "priority": need.priority.value,
        "needed_by": need.needed_by.isoformat(),
        "requested": 0,
        "status": NeedStatus.OPEN.value,
        "need_version": 0,
        "recipient_version": recipient_version,
        "recipient_blocked": recipient_blocked,
        "recipient_digest": recipient_digest,
        "committed": 0,
        "in_transit": 0,
        "delivered": 0,
        "ledger_version": 0,
        "rev": 1,
        "live_pledges": 0,
        "pledges": [],
        "leaving": [],
        "created_at": now,
        "last_delivered_at": None,
    }


def remaining(ledger: Ledger) -> int:
    """What the need still lacks (never negative, even after its request was lowered)."""
    return max(int(ledger["requested"]) - int(ledger["committed"]), 0)


def recipient_blocked(status: str | None) -> bool:
    """Whether a recipient in this state takes no pledges (suspended or archived)."""
    return status in BLOCKING_REASONS


def settle(ledger: Ledger, change: LedgerChange[R], now: datetime) -> LedgerChange[R]:
    """Complete a change: new quantities, `updated_at`, and a ledger event when the quantities moved.

    The stored totals (and the live-pledge count) move by the difference between the changed pledges'
    old and new states — exact, because the write is guarded by the revision they were read at, and
    never a recount: settled pledges are no longer in the ledger to be counted.
    """
    if change.noop:
        return change
    fields: dict[str, Any] = {**change.set_fields, "updated_at": now}
    if change.pledges is not None:
        ids = change.changed_pledge_ids
        old = [p for p in ledger.get("pledges", []) if p["pledge_id"] in ids]
        new = [p for p in change.pledges if p["pledge_id"] in ids]
    else:
        old = [change.replaced[0]] if change.replaced else []
        new = [change.appended] if change.appended else [change.replaced[1]] if change.replaced else []
    before, after = quantities(old), quantities(new)
    q = Quantities(
        ledger["committed"] + after.committed - before.committed,
        ledger["in_transit"] + after.in_transit - before.in_transit,
        ledger["delivered"] + after.delivered - before.delivered,
    )
    fields.update(committed=q.committed, in_transit=q.in_transit, delivered=q.delivered)
    fields["live_pledges"] = (
        int(ledger.get("live_pledges", 0)) + sum(map(is_live, new)) - sum(map(is_live, old))
    )
    merged = {**ledger, **fields}
    events = list(change.events)
    moved = any(merged.get(k) != ledger.get(k) for k in ANNOUNCED)
    if moved or ledger.get("ledger_version", 0) == 0:
        fields["ledger_version"] = ledger.get("ledger_version", 0) + 1
        events.append(
            NeedLedgerChanged(
                need_id=ledger["_id"],
                recipient_id=merged["recipient_id"],
                requested=merged["requested"],
                committed=q.committed,
                in_transit=q.in_transit,
                delivered=q.delivered,
                ledger_version=fields["ledger_version"],
                need_status=merged["status"],
                occurred_at=now,
                ledger_digest=ledger_figures_digest(merged["requested"], q.committed, q.in_transit, q.delivered),
            )
        )
    change.set_fields = fields
    change.events = events
    return change


def _release(ledger: Ledger, change: LedgerChange[R], reason: str, now: datetime) -> None:
    """Cancel every pledged/confirmed pledge with a reason (dispatched goods may still arrive)."""
    pledges = list(change.pledges if change.pledges is not None else ledger.get("pledges", []))
    for index, pledge in enumerate(pledges):
        if PledgeStatus(pledge["status"]) in RELEASABLE:
            pledges[index] = advance(pledge, CANCELLED, now, "system", reason=reason)
            change.changed_pledge_ids.add(pledge["pledge_id"])
            change.events.append(
                PledgeCancelled(pledge=pledge_public(ledger, pledges[index]), occurred_at=now, reason=reason)
            )
    change.pledges = pledges


# -- decisions ----------------------------------------------------------------------------------------


def reserve(ledger: Ledger, pledge: Pledge, *, now: datetime, allow_partial: bool = False) -> LedgerChange[Reservation]:
    """Reserve a new pledge: the need is open, its recipient not blocked, and enough of it remains.

    A pledge id the ledger already holds (live, or settled and leaving; the store also shows one already
    moved to the per-pledge collection) is a retried create: the stored pledge comes back unchanged
    (IdempotencyKeyReused if the retry asks for something else). With `allow_partial` (an accepted
    offer), a pledge larger than what remains is cut to it instead of refused. A need holding
    MAX_LIVE_PLEDGES pledges takes no more until some settle (TooManyLivePledges).
    """
    for existing in [*ledger.get("pledges", []), *ledger.get("leaving", [])]:
        if existing["pledge_id"] == pledge["pledge_id"]:
            if not same_request(existing, pledge):
                raise IdempotencyKeyReused("a different pledge")
            return unchanged(Reservation(ledger, existing, True))
    if ledger["status"] != NeedStatus.OPEN.value:
        raise NeedNotOpen(ledger["status"])
    if ledger.get("recipient_blocked"):
        raise RecipientUnavailable()
    available = remaining(ledger)
    quantity = pledge["quantity"]
    if quantity > available:
        if not allow_partial or available == 0:
            raise OverPledged(available)
        quantity = available
    if held_pledges(ledger) >= MAX_LIVE_PLEDGES:
        raise TooManyLivePledges(MAX_LIVE_PLEDGES)
    reserved = {**pledge, "quantity": quantity, "created_at": now, "updated_at": now}
    change = LedgerChange(
        result=Reservation(ledger, reserved, False),
        appended=reserved,
        changed_pledge_ids={reserved["pledge_id"]},
        events=[PledgeCreated(pledge=pledge_public(ledger, reserved), occurred_at=now)],
    )
    return settle(ledger, change, now)


def transition(
    ledger: Ledger,
    pledge: Pledge,
    action: str,
    *,
    by: str,
    now: datetime,
    received_quantity: int | None = None,
    proof_ref: str | None = None,
    reason: str | None = None,
) -> LedgerChange[tuple[Ledger, Pledge]]:
    """Move one pledge of the ledger by a caller's action (confirm, dispatch, deliver, cancel, reject).

    The state must allow the action (IllegalTransition); a receipt records what arrived, never more
    than was pledged (ReceivedExceedsPledged) — less lowers the commitment, re-opening the rest of the
    need; a cancellation or rejection records its reason. Repeating a move the same caller already made
    with the same facts (a retry whose first answer was lost) changes nothing and answers the current state.
    """
    facts: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    need_set: dict[str, Any] = {}
    if action == "deliver":
        received = int(received_quantity or 0)
        facts = {"received_quantity": received, "proof_ref": proof_ref, "delivered_quantity": received}
        extra = {"received_quantity": received, "proof_ref": proof_ref}
        if received > 0:
            need_set["last_delivered_at"] = now
    elif action in ("cancel", "reject"):
        facts = {"reason": reason or ("donor_cancelled" if action == "cancel" else "rejected")}
        extra = dict(facts)
    if already_made(pledge, action, by, extra):
        return unchanged((ledger, pledge))
    target = check_transition(action, pledge["status"])
    if action == "deliver" and extra["received_quantity"] > pledge["quantity"]:
        raise ReceivedExceedsPledged(extra["received_quantity"], pledge["quantity"])
    moved = advance(pledge, target, now, by, **facts)
    change = LedgerChange(
        result=(ledger, moved),
        replaced=(pledge, moved),
        changed_pledge_ids={pledge["pledge_id"]},
        set_fields=need_set,
        events=[TRANSITION_EVENTS[action](pledge=pledge_public(ledger, moved), occurred_at=now, **extra)],
    )
    return settle(ledger, change, now)


def already_made(pledge: Pledge, action: str, by: str, facts: dict[str, Any]) -> bool:
    """Whether the pledge's audit trail records this move by this caller with these facts (a repeated request)."""
    target = TRANSITIONS[action].target.value
    return any(
        entry.get("status") == target
        and entry.get("by") == by
        and all(entry.get(name) == value for name, value in facts.items())
        for entry in pledge.get("history", [])
    )


def apply_need(
    ledger: Ledger, need: NeedPublic, reason: str | None, now: datetime, *, restated: bool = False
) -> LedgerChange[None]:
    """Take a registry snapshot of the need (newer versions only, or a repair: `need_repair`); a need no
    longer open releases pledges."""
    if ledger.get("need_version", 0) >= need.version and need_repair(ledger, need, restated=restated) is None:
        return unchanged(None)  # stale or redelivered snapshot
    change: LedgerChange[None] = LedgerChange(
        result=None,
        set_fields={
            "recipient_id": need.recipient_id,
            "organisation_id": need.organisation_id,
            "kelurahan_code": need.kelurahan_code,
            "item": need.item.value,
            "unit": need.unit,
            "priority": need.priority.value,
            "needed_by": need.needed_by.isoformat(),
            "requested": need.quantity,
            "status": need.status.value,
            "need_version": need.version,
            "need_digest": public_state_digest(need),
        },
    )
    if need.status is not NeedStatus.OPEN:
        _release(ledger, change, reason or f"need_{need.status.value}", now)
    return settle(ledger, change, now)


def block_recipient(
    ledger: Ledger,
    version: int,
    blocked: bool,
    reason: str,
    now: datetime,
    *,
    digest: str | None = None,
    restated: bool = False,
) -> LedgerChange[None]:
    """Record the recipient's (un)blocking (newer versions only, or a repair of its snapshot `digest`:
    `blocking_repair`); blocking releases live pledges."""
    if ledger.get("recipient_version", 0) >= version and (
        digest is None or blocking_repair(ledger, version, digest, restated=restated) is None
    ):
        return unchanged(None)
    fields: dict[str, Any] = {"recipient_version": version, "recipient_blocked": blocked}
    if digest is not None:
        fields["recipient_digest"] = digest
    change: LedgerChange[None] = LedgerChange(result=None, set_fields=fields)
    if blocked:
        _release(ledger, change, reason, now)
    return settle(ledger, change, now)


def expire(ledger: Ledger, now: datetime, policy: ExpiryPolicy) -> LedgerChange[list[str]]:
    """Expire overdue pledges and remind donors of those about to expire; result: one action per pledge."""
    pledges = list(ledger.get("pledges", []))
    change: LedgerChange[list[str]] = LedgerChange(result=[])
    for index, pledge in enumerate(pledges):
        decision = expiry_decision(pledge, now, policy)
        if decision is None:
            continue
        if decision.action == "expire":
            pledges[index] = advance(pledge, EXPIRED, now, "system", reason=decision.reason)
            change.events.append(
                PledgeExpired(pledge=pledge_public(ledger, pledges[index]), occurred_at=now, reason=decision.reason)
            )
            change.result.append("expired")
        else:
            # Recording the reminder in the same write as its event makes it go out exactly once.
            pledges[index] = {**pledge, "reminded_stage": decision.stage}
            change.events.append(
                PledgeExpiring(pledge=pledge_public(ledger, pledge), occurred_at=now, expires_at=decision.deadline)
            )
            change.result.append("reminded")
        change.changed_pledge_ids.add(pledge["pledge_id"])
    if not change.result:
        return unchanged([])
    change.pledges = pledges
    return settle(ledger, change, now)


def needs_expiry_pass(pledges: list[Pledge], now: datetime, policy: ExpiryPolicy) -> bool:
    """Whether any of these pledges is due to expire or to be reminded now."""
    return any(expiry_decision(p, now, policy) for p in pledges)
