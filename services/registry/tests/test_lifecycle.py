"""Unit tests of the recipient lifecycle: every action from every status by every actor, and what a step writes."""

from __future__ import annotations

import itertools

import pytest
from ksbb_contracts.events.registry import (
    RecipientActivated,
    RecipientArchived,
    RecipientReinstated,
    RecipientSuspended,
    RecipientVerified,
)
from ksbb_contracts.topics import REGISTRY_CONTACTS
from ksbb_contracts.vocab import RecipientStatus
from ksbb_registry.domain import lifecycle
from ksbb_registry.domain.errors import IllegalTransition, NotPermitted, ReasonRequired
from ksbb_registry.domain.lifecycle import Action, Actor
from ksbb_registry.domain.recipients import AuditEntry

from .builders import ADMIN, NOW, STAFF, recipient

pytestmark = pytest.mark.unit
S = RecipientStatus
STAFF_ACTORS = frozenset({Actor.ADMIN, Actor.OWN_FACILITATOR})

#: The lifecycle as the registry documents it (written out here, independently of the code's table):
#: action -> (statuses it starts from, status it leads to, who may do it, whether a reason is needed).
EXPECTED: dict[Action, tuple[frozenset[RecipientStatus], RecipientStatus, frozenset[Actor], bool]] = {
    Action.VERIFY: (frozenset({S.REGISTERED}), S.VERIFIED, STAFF_ACTORS, True),
    Action.ACTIVATE: (frozenset({S.VERIFIED}), S.ACTIVE, STAFF_ACTORS, False),
    Action.SUSPEND: (frozenset({S.ACTIVE}), S.SUSPENDED, STAFF_ACTORS, True),
    Action.REINSTATE: (frozenset({S.SUSPENDED}), S.ACTIVE, frozenset({Actor.ADMIN}), False),
    Action.ARCHIVE: (
        frozenset({S.REGISTERED, S.VERIFIED, S.ACTIVE, S.SUSPENDED}),
        S.ARCHIVED,
        frozenset({Actor.ADMIN}),
        True,
    ),
}
EVENTS = {
    Action.VERIFY: RecipientVerified,
    Action.ACTIVATE: RecipientActivated,
    Action.SUSPEND: RecipientSuspended,
    Action.REINSTATE: RecipientReinstated,
    Action.ARCHIVE: RecipientArchived,
}


@pytest.mark.parametrize(
    ("action", "status", "actor"),
    list(itertools.product(Action, RecipientStatus, [Actor.ADMIN, Actor.OWN_FACILITATOR, None])),
)
def test_every_action_from_every_status_by_every_actor(
    action: Action, status: RecipientStatus, actor: Actor | None
) -> None:
    sources, target, actors, reason_required = EXPECTED[action]
    for reason in ("hasil survei", None, "   "):
        if actor not in actors:
            with pytest.raises(NotPermitted) as refused:
                lifecycle.transition(action, status, actor, reason)
            assert refused.value.message == f"you may not {action.value} this recipient"
        elif status not in sources:
            with pytest.raises(IllegalTransition) as illegal:
                lifecycle.transition(action, status, actor, reason)
            assert (illegal.value.action, illegal.value.current, illegal.value.field) == (
                action.value,
                status.value,
                "status",
            )
        elif reason_required and not (reason and reason.strip()):
            with pytest.raises(ReasonRequired) as missing:
                lifecycle.transition(action, status, actor, reason)
            assert missing.value.field == "reason"
        else:
            assert lifecycle.transition(action, status, actor, reason) is target


def test_the_code_table_is_the_documented_lifecycle() -> None:
    assert set(lifecycle.TRANSITIONS) == set(Action)
    for action, rule in lifecycle.TRANSITIONS.items():
        assert (rule.sources, rule.target, rule.actors, rule.reason_required) == EXPECTED[action]


def test_archived_is_final() -> None:
    for action in Action:
        with pytest.raises(IllegalTransition):
            lifecycle.transition(action, S.ARCHIVED, Actor.ADMIN, "alasan")


@pytest.mark.parametrize("action", list(Action))
def test_a_step_writes_the_status_an_audit_entry_and_one_event_with_the_next_version(action: Action) -> None:
    sources, target, _, _ = EXPECTED[action]
    source = sorted(sources)[0]
    current = recipient(source)
    change = lifecycle.step(
        current, action, Actor.ADMIN, "catatan lapangan", ["doc-9"], ADMIN, NOW, current.version + 1
    )
    assert change.after.status is target and change.after.version == current.version + 1
    assert "status" in change.fields
    [(history, entry)] = change.appended
    assert isinstance(entry, AuditEntry)
    assert history == "audit"
    assert (entry.action, entry.from_status, entry.to_status) == (action.value, source, target)
    assert (entry.actor, entry.role, entry.reason, entry.document_refs) == (
        "admin-1",
        "admin",
        "catatan lapangan",
        ["doc-9"],
    )
    [event] = change.events
    assert type(event) is EVENTS[action]
    assert event.recipient.status is target and event.recipient.version == current.version + 1
    assert event.occurred_at == NOW


def test_verify_records_who_verified_with_which_documents() -> None:
    change = lifecycle.step(
        recipient(S.REGISTERED), Action.VERIFY, Actor.OWN_FACILITATOR, "kunjungan", ["ktp"], STAFF, NOW, 4
    )
    assert change.after.verification is not None
    assert (change.after.verification.by, change.after.verification.at) == ("staff-1", NOW)
    assert change.after.verification.document_refs == ["ktp"]
    assert set(change.fields) == {"status", "verification"} and change.erasures == ()


@pytest.mark.parametrize(
    ("action", "source"),
    [(Action.SUSPEND, S.ACTIVE), (Action.ARCHIVE, S.ACTIVE), (Action.ARCHIVE, S.REGISTERED)],
)
def test_suspend_and_archive_leave_the_open_needs_to_close(action: Action, source: RecipientStatus) -> None:
    change = lifecycle.step(recipient(source), action, Actor.ADMIN, "laporan warga", [], ADMIN, NOW, 4)
    assert change.after.pending_need_closure is True and "pending_need_closure" in change.fields


@pytest.mark.parametrize(
    ("action", "source"),
    [(Action.VERIFY, S.REGISTERED), (Action.ACTIVATE, S.VERIFIED), (Action.REINSTATE, S.SUSPENDED)],
)
def test_other_steps_close_nothing_and_erase_nothing(action: Action, source: RecipientStatus) -> None:
    change = lifecycle.step(recipient(source), action, Actor.ADMIN, "ok", [], ADMIN, NOW, 4)
    assert change.after.pending_need_closure is False and "pending_need_closure" not in change.fields
    assert change.after.contact is not None and change.erasures == ()


def test_archive_erases_the_contact_person_and_tombstones_the_confidential_topic() -> None:
    current = recipient(S.SUSPENDED)
    change = lifecycle.step(current, Action.ARCHIVE, Actor.ADMIN, "tidak beroperasi", [], ADMIN, NOW, 4)
    assert change.after.contact is None and "contact" in change.fields
    assert [(e.topic, e.key) for e in change.erasures] == [(REGISTRY_CONTACTS, current.recipient_id)]
    [event] = change.events
    assert "Ibu Sari" not in event.model_dump_json() and "+6281234567890" not in event.model_dump_json()


def test_a_refused_step_changes_nothing() -> None:
    current = recipient(S.REGISTERED)
    with pytest.raises(NotPermitted):
        lifecycle.step(current, Action.REINSTATE, Actor.OWN_FACILITATOR, "x", [], STAFF, NOW, 4)
    with pytest.raises(IllegalTransition):
        lifecycle.step(current, Action.SUSPEND, Actor.ADMIN, "x", [], ADMIN, NOW, 4)
    assert current.status is S.REGISTERED and current.version == 3
