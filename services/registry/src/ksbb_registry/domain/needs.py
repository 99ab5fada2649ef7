"""Needs of recipient units: posting, changing, cancelling, closing, ledger quantities and recurring series."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ksbb_contracts.events.registry import (
    NeedCancelled,
    NeedChanged,
    NeedClosed,
    NeedFulfilled,
    NeedOpened,
    NeedPublic,
)
from ksbb_contracts.limits import HORIZON_DAYS, latest_allowed
from ksbb_contracts.vocab import Item, NeedStatus, Priority, RecipientStatus, Recurrence
from pydantic import BaseModel, ConfigDict

from ksbb_registry.domain.catalogue import default_unit
from ksbb_registry.domain.change import Change, changed_fields
from ksbb_registry.domain.errors import (
    BelowCommitted,
    DescriptionRequired,
    NeededByInPast,
    NeededByTooFar,
    NeedNotOpen,
    RecipientNotActive,
)
from ksbb_registry.domain.recipients import Recipient
from ksbb_registry.domain.recurrence import following_period, next_period_start, start_of

#: Who opens the later periods of a recurring need.
RECURRENCE_AUTHOR = "system:recurrence"
#: Facts of a period's need carried over to the next period's need.
_CARRIED_OVER = (
    "recipient_id",
    "organisation_id",
    "kelurahan_code",
    "kecamatan_code",
    "kota_code",
    "rw",
    "item",
    "item_description",
    "quantity",
    "unit",
    "priority",
    "recurrence",
    "series_id",
    "notes",
)


class Ledger(BaseModel):
    """Quantities of a need as published by the pledges service (versioned by it)."""

    model_config = ConfigDict(frozen=True)

    requested: int
    committed: int = 0
    in_transit: int = 0
    delivered: int = 0
    ledger_version: int = 0


class Need(BaseModel):
    """A need of a recipient unit (the aggregate as stored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    need_id: str
    recipient_id: str
    organisation_id: str
    kelurahan_code: str
    kecamatan_code: str
    kota_code: str
    rw: int | None = None
    item: Item
    item_description: str | None = None
    quantity: int
    unit: str
    priority: Priority
    needed_by: date
    recurrence: Recurrence
    series_id: str | None = None
    period_start: date | None = None
    series_next_at: datetime | None = None
    status: NeedStatus
    status_reason: str | None = None
    notes: str | None = None
    ledger: Ledger
    created_by: str | None = None
    version: int
    created_at: datetime
    updated_at: datetime


class NewNeed(BaseModel):
    """Command: post a need for an active recipient."""

    item: Item
    item_description: str | None = None
    quantity: int
    unit: str | None = None
    priority: Priority = Priority.MEDIUM
    needed_by: date
    recurrence: Recurrence = Recurrence.NONE
    notes: str | None = None


class NeedPatch(BaseModel):
    """Command: change an open need; only the fields given (and not null) are changed."""

    quantity: int | None = None
    unit: str | None = None
    priority: Priority | None = None
    needed_by: date | None = None
    item_description: str | None = None
    notes: str | None = None

    def changes(self) -> dict[str, Any]:
        """The given, non-null fields."""
        given = [name for name in type(self).model_fields if name in self.model_fields_set]
        return {name: getattr(self, name) for name in given if getattr(self, name) is not None}


def public(need: Need) -> NeedPublic:
    """The public snapshot carried by need events."""
    return NeedPublic(
        need_id=need.need_id,
        recipient_id=need.recipient_id,
        organisation_id=need.organisation_id,
        kelurahan_code=need.kelurahan_code,
        rw=need.rw,
        item=need.item,
        item_description=need.item_description,
        quantity=need.quantity,
        unit=need.unit,
        priority=need.priority,
        needed_by=need.needed_by,
        recurrence=need.recurrence,
        series_id=need.series_id,
        period_start=need.period_start,
        status=need.status,
        version=need.version,
    )


def is_fulfilled(requested: int, delivered: int) -> bool:
    """A need is fulfilled once deliveries reach the requested quantity."""
    return requested > 0 and delivered >= requested


def check_needed_by(needed_by: date, today: date) -> None:
    """A needed-by date lies between today and the programme's horizon, when posted and when changed."""
    if needed_by < today:
        raise NeededByInPast()
    if needed_by > latest_allowed(today):
        raise NeededByTooFar(HORIZON_DAYS)


def check_quantity_change(new_quantity: int, committed: int) -> None:
    """A need's quantity may not drop below what donors already committed."""
    if new_quantity < committed:
        raise BelowCommitted(new_quantity, committed)


def closure_reason(recipient_status: RecipientStatus) -> str:
    """Why a recipient's open needs close (its archive or its suspension)."""
    return "recipient_archived" if recipient_status is RecipientStatus.ARCHIVED else "recipient_suspended"


def post(
    need_id: str, recipient: Recipient, command: NewNeed, created_by: str, now: datetime
) -> Change[Need]:
    """A new open need of an active recipient; a recurring one starts its series today."""
    if recipient.status is not RecipientStatus.ACTIVE:
        raise RecipientNotActive(recipient.status.value)
    if command.item is Item.OTHER and not command.item_description:
        raise DescriptionRequired("item 'other' needs an item_description", field="item_description")
    today = now.date()
    check_needed_by(command.needed_by, today)
    recurring = command.recurrence is not Recurrence.NONE
    following = following_period(today, command.recurrence)
    need = Need(
        need_id=need_id,
        recipient_id=recipient.recipient_id,
        organisation_id=recipient.organisation_id,
        kelurahan_code=recipient.kelurahan_code,
        kecamatan_code=recipient.kecamatan_code,
        kota_code=recipient.kota_code,
        rw=recipient.rw,
        item=command.item,
        item_description=command.item_description,
        quantity=command.quantity,
        unit=command.unit or default_unit(command.item),
        priority=command.priority,
        needed_by=command.needed_by,
        recurrence=command.recurrence,
        series_id=need_id if recurring else None,
        period_start=today if recurring else None,
        series_next_at=start_of(following) if following else None,
        status=NeedStatus.OPEN,
        notes=command.notes,
        ledger=Ledger(requested=command.quantity),
        created_by=created_by,
        version=1,
        created_at=now,
        updated_at=now,
    )
    return Change(after=need, events=(NeedOpened(need=public(need), occurred_at=now),))


def revise(current: Need, changes: dict[str, Any], version: int, now: datetime) -> Change[Need] | None:
    """Change an open need; None when nothing differs. Private notes change without an event."""
    if current.status is not NeedStatus.OPEN:
        raise NeedNotOpen(current.status.value)
    if "quantity" in changes:
        check_quantity_change(changes["quantity"], current.ledger.committed)
    if "needed_by" in changes and changes["needed_by"] != current.needed_by:
        check_needed_by(changes["needed_by"], now.date())
    after = current.model_copy(update={**changes, "version": version})
    fields = changed_fields(current, after, changes)
    if not fields:
        return None
    publicly_changed = set(fields) - {"notes"}
    events = (NeedChanged(need=public(after), occurred_at=now),) if publicly_changed else ()
    return Change(after=after, fields=fields, events=events)


def cancel(current: Need, reason: str, version: int, now: datetime) -> Change[Need]:
    """Cancel an open need and stop its series."""
    if current.status is not NeedStatus.OPEN:
        raise NeedNotOpen(current.status.value)
    after = current.model_copy(
        update={
            "status": NeedStatus.CANCELLED,
            "status_reason": reason,
            "series_next_at": None,
            "version": version,
        }
    )
    return Change(
        after=after,
        fields=("status", "status_reason"),
        cleared=("series_next_at",),
        events=(NeedCancelled(need=public(after), reason=reason, occurred_at=now),),
    )


def close(current: Need, reason: str, version: int, now: datetime) -> Change[Need] | None:
    """Close a still-open need (its recipient left the active status) and stop its series."""
    if current.status is not NeedStatus.OPEN:
        return None
    after = current.model_copy(
        update={
            "status": NeedStatus.CLOSED,
            "status_reason": reason,
            "series_next_at": None,
            "version": version,
        }
    )
    return Change(
        after=after,
        fields=("status", "status_reason"),
        cleared=("series_next_at",),
        events=(NeedClosed(need=public(after), reason=reason, occurred_at=now),),
    )


#: Why a ledger event at a version the need already holds was applied anyway (the owner is authoritative).
SAME_VERSION_OTHER_FIGURES = "same_version_other_figures"
RESTATED = "restated"


def ledger_repair(held: Ledger, incoming: Ledger, *, restated: bool) -> str | None:
    """Whether an event that is not newer still replaces the held figures, and why (None: it does not).

    The same version with other figures means the owner reused a version after losing writes; a restated
    state (anti-entropy) with other figures wins whatever version is held.
    """
    if incoming.ledger_version > held.ledger_version or _figures(held) == _figures(incoming):
        return None
    if incoming.ledger_version == held.ledger_version:
        return SAME_VERSION_OTHER_FIGURES
    return RESTATED if restated else None


def _figures(ledger: Ledger) -> tuple[int, int, int, int]:
    return ledger.requested, ledger.committed, ledger.in_transit, ledger.delivered


def record_ledger(
    current: Need, ledger: Ledger, version: int, now: datetime, *, restated: bool = False
) -> Change[Need] | None:
    """Store newer ledger quantities (older or repeated versions change nothing unless they repair other
    figures, see `ledger_repair`); an open need whose deliveries reach the request becomes fulfilled."""
    held = current.ledger
    if held.ledger_version >= ledger.ledger_version and ledger_repair(held, ledger, restated=restated) is None:
        return None
    if current.status is NeedStatus.OPEN and is_fulfilled(ledger.requested, ledger.delivered):
        after = current.model_copy(
            update={
                "ledger": ledger,
                "status": NeedStatus.FULFILLED,
                "status_reason": "delivered",
                "version": version,
            }
        )
        return Change(
            after=after,
            fields=("ledger", "status", "status_reason"),
            events=(NeedFulfilled(need=public(after), occurred_at=now),),
        )
    return Change(after=current.model_copy(update={"ledger": ledger, "version": version}), fields=("ledger",))


def due_period(previous: Need, today: date) -> date | None:
    """The start of the period a recurring need's series should have open today, if a new one is due."""
    if previous.period_start is None:
        return None
    return next_period_start(previous.period_start, previous.recurrence, today)


def next_period(previous: Need, start: date, need_id: str, now: datetime) -> Change[Need]:
    """The need of a series' period starting at `start`: the same request, dates shifted by the periods passed."""
    assert previous.period_start is not None, "only a recurring need has a next period"
    shift = start - previous.period_start
    following = following_period(start, previous.recurrence)
    carried = {name: getattr(previous, name) for name in _CARRIED_OVER}
    need = Need(
        **carried,
        need_id=need_id,
        needed_by=previous.needed_by + shift,
        period_start=start,
        series_next_at=start_of(following) if following else None,
        status=NeedStatus.OPEN,
        status_reason=None,
        ledger=Ledger(requested=previous.quantity),
        created_by=RECURRENCE_AUTHOR,
        version=1,
        created_at=now,
        updated_at=now,
    )
    return Change(after=need, events=(NeedOpened(need=public(need), occurred_at=now),))
