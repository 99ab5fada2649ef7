"""The recipient lifecycle as data: which action moves which status where, who may do it, what it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ksbb_contracts import Event
from ksbb_contracts.events.registry import (
    RecipientActivated,
    RecipientArchived,
    RecipientReinstated,
    RecipientSuspended,
    RecipientVerified,
)
from ksbb_contracts.topics import REGISTRY_CONTACTS
from ksbb_contracts.vocab import RecipientStatus

from ksbb_registry.domain.change import Author, Change, Erasure
from ksbb_registry.domain.errors import IllegalTransition, NotPermitted, ReasonRequired
from ksbb_registry.domain.recipients import Recipient, Verification, audit_entry, public


class Action(StrEnum):
    """Lifecycle actions on a recipient."""

    VERIFY = "verify"
    ACTIVATE = "activate"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    ARCHIVE = "archive"


class Actor(StrEnum):
    """Who may perform an action, relative to the recipient."""

    ADMIN = "admin"
    OWN_FACILITATOR = "own_facilitator"


@dataclass(frozen=True)
class Transition:
    """One row of the lifecycle table."""

    action: Action
    sources: frozenset[RecipientStatus]
    target: RecipientStatus
    actors: frozenset[Actor]
    reason_required: bool
    event: Callable[..., Event]


S = RecipientStatus
_STAFF = frozenset({Actor.ADMIN, Actor.OWN_FACILITATOR})
_ADMIN = frozenset({Actor.ADMIN})
TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        Transition(Action.VERIFY, frozenset({S.REGISTERED}), S.VERIFIED, _STAFF, True, RecipientVerified),
        Transition(Action.ACTIVATE, frozenset({S.VERIFIED}), S.ACTIVE, _STAFF, False, RecipientActivated),
        Transition(Action.SUSPEND, frozenset({S.ACTIVE}), S.SUSPENDED, _STAFF, True, RecipientSuspended),
        Transition(Action.REINSTATE, frozenset({S.SUSPENDED}), S.ACTIVE, _ADMIN, False, RecipientReinstated),
        Transition(
            Action.ARCHIVE,
            frozenset({S.REGISTERED, S.VERIFIED, S.ACTIVE, S.SUSPENDED}),
            S.ARCHIVED,
            _ADMIN,
            True,
            RecipientArchived,
        ),
    )
}
#: Statuses in which a recipient's open needs must close.
CLOSES_NEEDS = frozenset({S.SUSPENDED, S.ARCHIVED})


def transition(
    action: Action, current: RecipientStatus, actor: Actor | None, reason: str | None
) -> RecipientStatus:
    """The target status of an action; refused when the actor may not, the step is illegal, or a reason is missing."""
    rule = TRANSITIONS[action]
    if actor is None or actor not in rule.actors:
        raise NotPermitted(f"you may not {action.value} this recipient")
    if current not in rule.sources:
        raise IllegalTransition(action.value, current.value)
    if rule.reason_required and not (reason and reason.strip()):
        raise ReasonRequired(action.value)
    return rule.target


def step(
    current: Recipient,
    action: Action,
    actor: Actor | None,
    reason: str | None,
    document_refs: list[str],
    author: Author,
    now: datetime,
    version: int,
) -> Change[Recipient]:
    """Move a recipient one step: its new status, audit entry and event, plus what the step implies
    (verification record; needs to close on suspend/archive; contact erased on archive)."""
    target = transition(action, current.status, actor, reason)
    update: dict[str, object] = {"status": target, "version": version}
    fields = ["status"]
    if action is Action.VERIFY:
        update["verification"] = Verification(
            by=author.subject, at=now, note=reason, document_refs=document_refs
        )
        fields.append("verification")
    if target in CLOSES_NEEDS:
        update["pending_need_closure"] = True
        fields.append("pending_need_closure")
    erasures: tuple[Erasure, ...] = ()
    if action is Action.ARCHIVE:
        update["contact"] = None
        fields.append("contact")
        erasures = (Erasure(REGISTRY_CONTACTS, current.recipient_id),)
    after = current.model_copy(update=update)
    entry = audit_entry(author, action.value, now, current.status, target, reason, document_refs)
    return Change(
        after=after,
        fields=tuple(fields),
        appended=(("audit", entry),),
        events=(TRANSITIONS[action].event(recipient=public(after), occurred_at=now),),
        erasures=erasures,
    )
