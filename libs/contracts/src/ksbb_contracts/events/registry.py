"""Events of the registry service: organisations, recipients, needs, confidential contacts."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from ksbb_contracts import topics
from ksbb_contracts.events.base import Event
from ksbb_contracts.vocab import (
    Item,
    NeedStatus,
    OrganisationKind,
    OrganisationStatus,
    Priority,
    RecipientKind,
    RecipientStatus,
    Recurrence,
)

__all__ = [
    "Beneficiaries",
    "NeedCancelled",
    "NeedChanged",
    "NeedClosed",
    "NeedFulfilled",
    "NeedOpened",
    "NeedPublic",
    "OrganisationContactRecorded",
    "OrganisationPublic",
    "OrganisationRegistered",
    "OrganisationReinstated",
    "OrganisationSuspended",
    "OrganisationUpdated",
    "RecipientActivated",
    "RecipientArchived",
    "RecipientContactRecorded",
    "RecipientPublic",
    "RecipientRegistered",
    "RecipientReinstated",
    "RecipientSuspended",
    "RecipientUpdated",
    "RecipientVerified",
    "public_state_digest",
    "snapshot_repair",
]

_DIGEST_DESCRIPTION = (
    "Digest of the snapshot's public state without its version (public_state_digest); absent from events "
    "of older producers, consumers then compute it from the snapshot."
)
_RESTATED_DESCRIPTION = (
    "Re-published current state (the registry's anti-entropy job), not a change: consumers whose view "
    "differs apply it even at a version they already hold or a newer one."
)


#: Why a consumer applied a registry snapshot that is not newer than its view (ADR 0005).
SAME_VERSION_OTHER_CONTENT = "same_version_other_figures"
RESTATED = "restated"


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def public_state_digest(snapshot: BaseModel) -> str:
    """The digest of a snapshot's public state (all but `version`): equal states give equal digests everywhere."""
    state = snapshot.model_dump(mode="json", exclude={"version"})
    canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def snapshot_repair(
    held_version: int, held_digest: str | None, version: int, digest: str, *, restated: bool
) -> str | None:
    """Why a snapshot that is not newer than a consumer's view still replaces it (None: it does not).

    The registry is authoritative (ADR 0005): the same version with another digest means it reused a version
    after losing writes, and a `restated` state that differs repairs a view at that version or a newer one.
    A view kept before digests were (`held_digest` None) is repaired only by a restated snapshot; a view
    holding nothing yet (`held_version` 0) or an older version takes the snapshot anyway, not as a repair.
    """
    if version > held_version or held_version == 0 or held_digest == digest:
        return None
    if held_digest is None and not restated:
        return None
    if version == held_version:
        return SAME_VERSION_OTHER_CONTENT
    return RESTATED if restated else None


class OrganisationPublic(_Snapshot):
    """Public facts about a facilitator organisation."""

    organisation_id: str
    name: str
    kind: OrganisationKind
    area_codes: list[str] = Field(default_factory=list, description="Kemendagri codes of the areas covered.")
    status: OrganisationStatus
    version: int = Field(ge=1, description="Aggregate version; consumers drop older snapshots.")


class _OrganisationEvent(Event):
    topic = topics.ORGANISATIONS
    subject_field = "organisation.organisation_id"
    organisation: OrganisationPublic
    state_digest: str | None = Field(default=None, description=_DIGEST_DESCRIPTION)
    restated: bool = Field(default=False, description=_RESTATED_DESCRIPTION)

    def organisation_digest(self) -> str:
        """The digest of this event's organisation snapshot (computed, so events without `state_digest` compare)."""
        return public_state_digest(self.organisation)


class OrganisationRegistered(_OrganisationEvent):
    """An admin registered a facilitator organisation."""

    event_type = "ksbb.organisation.registered.v1"


class OrganisationUpdated(_OrganisationEvent):
    """An organisation's public facts changed (or, `restated`, the registry re-published its current state)."""

    event_type = "ksbb.organisation.updated.v1"


class OrganisationSuspended(_OrganisationEvent):
    """An organisation was suspended."""

    event_type = "ksbb.organisation.suspended.v1"


class OrganisationReinstated(_OrganisationEvent):
    """A suspended organisation was reinstated."""

    event_type = "ksbb.organisation.reinstated.v1"


class Beneficiaries(_Snapshot):
    """Who a recipient unit serves (counts only)."""

    households: int = Field(ge=0, description="Households (KK).")
    people: int = Field(ge=0)
    children: int = Field(default=0, ge=0)
    elderly: int = Field(default=0, ge=0)
    disabled: int = Field(default=0, ge=0)


class RecipientPublic(_Snapshot):
    """Public facts about a recipient unit — never its contact person or notes."""

    recipient_id: str
    name: str
    kind: RecipientKind
    kind_description: str | None = None
    organisation_id: str
    kelurahan_code: str = Field(description="Kemendagri kelurahan code, e.g. 31.71.01.1001.")
    rw: int | None = Field(default=None, ge=1, le=99)
    rt: int | None = Field(default=None, ge=1, le=99)
    beneficiaries: Beneficiaries
    status: RecipientStatus
    version: int = Field(ge=1)


class _RecipientEvent(Event):
    topic = topics.RECIPIENTS
    subject_field = "recipient.recipient_id"
    recipient: RecipientPublic
    occurred_at: datetime
    state_digest: str | None = Field(default=None, description=_DIGEST_DESCRIPTION)
    restated: bool = Field(default=False, description=_RESTATED_DESCRIPTION)

    def recipient_digest(self) -> str:
        """The digest of this event's recipient snapshot (computed, so events without `state_digest` compare)."""
        return public_state_digest(self.recipient)


class RecipientRegistered(_RecipientEvent):
    """A recipient unit was registered."""

    event_type = "ksbb.recipient.registered.v1"


class RecipientVerified(_RecipientEvent):
    """A facilitator or admin verified a recipient."""

    event_type = "ksbb.recipient.verified.v1"


class RecipientActivated(_RecipientEvent):
    """A verified recipient became active and may post needs."""

    event_type = "ksbb.recipient.activated.v1"


class RecipientUpdated(_RecipientEvent):
    """A recipient's public facts changed (or, `restated`, the registry re-published its current state)."""

    event_type = "ksbb.recipient.updated.v1"


class RecipientSuspended(_RecipientEvent):
    """A recipient was suspended; its open needs close."""

    event_type = "ksbb.recipient.suspended.v1"


class RecipientReinstated(_RecipientEvent):
    """A suspended recipient became active again."""

    event_type = "ksbb.recipient.reinstated.v1"


class RecipientArchived(_RecipientEvent):
    """A recipient was archived; its contact person was erased."""

    event_type = "ksbb.recipient.archived.v1"


class NeedPublic(_Snapshot):
    """Public facts about a need."""

    need_id: str
    recipient_id: str
    organisation_id: str
    kelurahan_code: str
    rw: int | None = None
    item: Item
    item_description: str | None = None
    quantity: int = Field(ge=1)
    unit: str
    priority: Priority
    needed_by: date
    recurrence: Recurrence = Recurrence.NONE
    series_id: str | None = None
    period_start: date | None = None
    status: NeedStatus
    version: int = Field(ge=1)


class _NeedEvent(Event):
    topic = topics.NEEDS
    subject_field = "need.need_id"
    need: NeedPublic
    occurred_at: datetime
    state_digest: str | None = Field(default=None, description=_DIGEST_DESCRIPTION)
    restated: bool = Field(default=False, description=_RESTATED_DESCRIPTION)

    def need_digest(self) -> str:
        """The digest of this event's need snapshot (computed, so events without `state_digest` compare)."""
        return public_state_digest(self.need)


class NeedOpened(_NeedEvent):
    """A recipient posted a need (or a recurring need's new period opened)."""

    event_type = "ksbb.need.opened.v1"


class NeedChanged(_NeedEvent):
    """A need's quantity, priority or dates changed (or, `restated`, the registry re-published its current state)."""

    event_type = "ksbb.need.changed.v1"


class NeedClosed(_NeedEvent):
    """A need was closed before being fulfilled (e.g. recipient suspended)."""

    event_type = "ksbb.need.closed.v1"
    reason: str = Field(description="Machine-readable reason code, e.g. recipient_suspended.")


class NeedCancelled(_NeedEvent):
    """A need was cancelled by its recipient, facilitator or an admin."""

    event_type = "ksbb.need.cancelled.v1"
    reason: str


class NeedFulfilled(_NeedEvent):
    """Deliveries reached the requested quantity; final."""

    event_type = "ksbb.need.fulfilled.v1"


class RecipientContactRecorded(Event):
    """CONFIDENTIAL: a recipient's contact person (compacted topic; tombstone erases)."""

    event_type = "ksbb.recipient_contact.recorded.v1"
    topic = topics.REGISTRY_CONTACTS
    subject_field = "recipient_id"

    recipient_id: str
    organisation_id: str
    contact_name: str
    phone: str
    email: str | None = None
    street_address: str | None = None


class OrganisationContactRecorded(Event):
    """CONFIDENTIAL: an organisation's contact (compacted topic; tombstone erases)."""

    event_type = "ksbb.organisation_contact.recorded.v1"
    topic = topics.REGISTRY_CONTACTS
    subject_field = "organisation_id"

    organisation_id: str
    contact_name: str | None = None
    email: str
    phone: str | None = None
