"""Pledge lifecycle: the transition table, ledger quantities and the expiry rule (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from ksbb_contracts.vocab import DeliveryMode, PledgeStatus

from ksbb_pledges.domain.errors import IllegalTransition

PLEDGED, CONFIRMED, DISPATCHED, DELIVERED = (
    PledgeStatus.PLEDGED,
    PledgeStatus.CONFIRMED,
    PledgeStatus.DISPATCHED,
    PledgeStatus.DELIVERED,
)
CANCELLED, REJECTED, EXPIRED = PledgeStatus.CANCELLED, PledgeStatus.REJECTED, PledgeStatus.EXPIRED

#: States still holding a reservation that has not reached the recipient.
LIVE = frozenset({PLEDGED, CONFIRMED, DISPATCHED})
#: States released when the need or recipient goes away (dispatched goods may still arrive).
RELEASABLE = frozenset({PLEDGED, CONFIRMED})


class Actor(StrEnum):
    """How the caller relates to a pledge (decided from the token and the ledger)."""

    ADMIN = "admin"
    DONOR = "donor"  # the donor who made the pledge
    RECIPIENT = "recipient"  # the recipient unit's own account
    FACILITATOR = "facilitator"  # staff of the organisation that facilitates the recipient
    SYSTEM = "system"  # the service itself (expiry, need closed, recipient suspended)


@dataclass(frozen=True)
class Transition:
    """One allowed move of a pledge: from which states, to which state, by whom."""

    action: str
    sources: frozenset[PledgeStatus]
    target: PledgeStatus
    actors: frozenset[Actor]


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition(
            "confirm",
            frozenset({PLEDGED}),
            CONFIRMED,
            frozenset({Actor.RECIPIENT, Actor.FACILITATOR, Actor.ADMIN}),
        ),
        Transition(
            "dispatch",
            frozenset({CONFIRMED}),
            DISPATCHED,
            frozenset({Actor.DONOR, Actor.FACILITATOR, Actor.ADMIN}),
        ),
        Transition(
            "deliver",
            frozenset({DISPATCHED}),
            DELIVERED,
            frozenset({Actor.RECIPIENT, Actor.FACILITATOR, Actor.ADMIN}),
        ),
        Transition("cancel", RELEASABLE, CANCELLED, frozenset({Actor.DONOR, Actor.ADMIN, Actor.SYSTEM})),
        Transition("reject", RELEASABLE, REJECTED, frozenset({Actor.RECIPIENT, Actor.FACILITATOR, Actor.ADMIN})),
        Transition("expire", RELEASABLE, EXPIRED, frozenset({Actor.SYSTEM})),
    )
}


def may(action: str, actors: Iterable[Actor], mode: DeliveryMode | str) -> bool:
    """Whether any of the caller's relations may perform an action (before looking at the state)."""
    transition = TRANSITIONS[action]
    allowed = set(transition.actors)
    if action == "dispatch" and DeliveryMode(mode) is DeliveryMode.OWN_DELIVERY:
        # A facilitator dispatches only on a distribution partner's behalf; own delivery is the donor's act.
        allowed.discard(Actor.FACILITATOR)
    return bool(allowed & set(actors))


def check_transition(action: str, status: PledgeStatus | str) -> PledgeStatus:
    """The target state of an action from a state; IllegalTransition when the state does not allow it."""
    transition = TRANSITIONS[action]
    current = PledgeStatus(status)
    if current not in transition.sources:
        raise IllegalTransition(action, current.value, tuple(sorted(s.value for s in transition.sources)))
    return transition.target


@dataclass(frozen=True)
class Quantities:
    """Sahana-style quantities of one need."""

    committed: int
    in_transit: int
    delivered: int


def quantities(pledges: Iterable[Mapping[str, Any]]) -> Quantities:
    """Committed = live reservations + what was received; in transit = dispatched; delivered = received.

    Cancelled, rejected and expired pledges release their reservation; a delivery of less than pledged
    reduces the commitment to the quantity received, so the rest of the need opens again.
    """
    committed = in_transit = delivered = 0
    for pledge in pledges:
        status = PledgeStatus(pledge["status"])
        if status in LIVE:
            committed += int(pledge["quantity"])
            if status is DISPATCHED:
                in_transit += int(pledge["quantity"])
        elif status is DELIVERED:
            received = int(pledge.get("delivered_quantity") or 0)
            committed += received
            delivered += received
    return Quantities(committed, in_transit, delivered)


@dataclass(frozen=True)
class ExpiryPolicy:
    """How long a pledge may wait for confirmation and for dispatch, and when to remind the donor."""

    confirm_window: timedelta = timedelta(hours=48)
    dispatch_grace: timedelta = timedelta(hours=24)
    reminder_lead: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class ExpiryDecision:
    """What the expiry sweep does with one pledge now: expire it, or remind its donor once."""

    action: str  # "expire" or "remind"
    reason: str  # not_confirmed or not_dispatched
    deadline: datetime
    stage: str  # the state the deadline belongs to (one reminder per stage)


def deadline_of(pledge: Mapping[str, Any], policy: ExpiryPolicy) -> tuple[datetime, str] | None:
    """When a waiting pledge expires and why; None for states without a deadline."""
    status = PledgeStatus(pledge["status"])
    if status is PLEDGED:
        return _aware(pledge["created_at"]) + policy.confirm_window, "not_confirmed"
    if status is CONFIRMED:
        planned = pledge["planned_date"]
        planned_day = planned if isinstance(planned, date) else date.fromisoformat(str(planned))
        # The donor has the whole planned day, plus the grace period.
        end_of_day = datetime.combine(planned_day + timedelta(days=1), time(0), tzinfo=UTC)
        return end_of_day + policy.dispatch_grace, "not_dispatched"
    return None


def expiry_decision(pledge: Mapping[str, Any], now: datetime, policy: ExpiryPolicy) -> ExpiryDecision | None:
    """Expire a pledge past its deadline; remind once when the deadline is near; otherwise nothing."""
    found = deadline_of(pledge, policy)
    if found is None:
        return None
    deadline, reason = found
    stage = str(pledge["status"])
    if now >= deadline:
        return ExpiryDecision("expire", reason, deadline, stage)
    if now >= deadline - policy.reminder_lead and pledge.get("reminded_stage") != stage:
        return ExpiryDecision("remind", reason, deadline, stage)
    return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
