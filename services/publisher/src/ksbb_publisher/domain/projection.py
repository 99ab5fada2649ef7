"""How each public event changes the read models — pure merge rules, the same for live consumption and rebuild.

Every document part is owned by one topic and guarded by that topic's version of the aggregate: a part is
applied only when its version is newer than the one stored, so redelivered and stale events change nothing.
Events arrive out of order across topics (a need's ledger before the need opened): each topic writes its
own fields of a shared document with its own version field, so the parts merge whichever comes first.
Offers carry no version; they are ordered per offer (Kafka key) and applied once by event id.

`merge` and `fold` define the result; the Mongo store applies the same rule atomically per document.
A batch of events is folded in memory first (`batch_updates`, `fold_offer_changes`): per document only
what is newer than the stored versions is written, so a batch costs one write per changed document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from ksbb_contracts import Event
from ksbb_contracts.events import (
    DonorProfileUpdated,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    NeedLedgerChanged,
    OfferCreated,
)
from ksbb_contracts.events.pledges import _PledgeEvent
from ksbb_contracts.events.registry import _NeedEvent, _OrganisationEvent, _RecipientEvent

from ksbb_publisher.domain.areas import area_fields

#: Collections rebuilt from the topics; `snapshots` and `snapshot_chunks` are not read models.
READ_MODELS: tuple[str, ...] = ("recipients", "needs", "organisations", "donors", "pledges", "feed", "offers")
#: A read-model document's revision: a fresh random token on every write, under a unique index, so a write
#: can be conditional on the document being exactly as read with an index lookup (on any server).
REVISION = "_rev"
#: Fields that record when (`projected_at`), in which order (`seq`) and by which write (`_rev`) this
#: database projected something: they differ between two builds.
VOLATILE_FIELDS: frozenset[str] = frozenset({"projected_at", "seq", REVISION})

OfferEvent: TypeAlias = OfferCreated | MatchProposed | MatchAccepted | MatchDeclined
#: Offer event type -> the offer's public status after it.
OFFER_STATUS: dict[type[Event], str] = {
    OfferCreated: "open",
    MatchProposed: "proposed",
    MatchAccepted: "accepted",
    MatchDeclined: "declined",
}

DocKey = tuple[str, str]


@dataclass(frozen=True)
class VersionedPart:
    """The fields one topic owns in one read-model document, with that topic's version of the aggregate."""

    model: str
    doc_id: str
    version_field: str
    version: int
    fields: Mapping[str, Any]
    #: A part whose owner may reuse a version after a crash names the field holding its content digest
    #: (also one of `fields`): the same version with another digest is applied (the owner is authoritative).
    digest_field: str | None = None
    #: The owner re-published its current state (anti-entropy): applied whenever the digest differs.
    restated: bool = False

    @property
    def key(self) -> DocKey:
        """Read model and document id."""
        return self.model, self.doc_id

    @property
    def digest(self) -> Any:
        """This part's content digest (None without a digest field)."""
        return self.fields.get(self.digest_field) if self.digest_field else None

    def is_newer_than(self, doc: Mapping[str, Any] | None) -> bool:
        """Whether this part would change `doc`: no document, no version of this part yet, an older one, or
        a repair (`repair_reason`)."""
        stored = doc.get(self.version_field) if doc is not None else None
        return stored is None or stored < self.version or self.repair_reason(doc) is not None

    def repair_reason(self, doc: Mapping[str, Any] | None) -> str | None:
        """Why this part replaces a document that holds its version or a newer one (None: it does not)."""
        if doc is None or self.digest_field is None or doc.get(self.version_field) is None:
            return None
        stored, stored_digest = doc[self.version_field], doc.get(self.digest_field)
        if stored < self.version or stored_digest == self.digest:
            return None
        if stored_digest is None and not self.restated:
            return None  # projected before digests were kept: only a restated state tells
        if stored == self.version:
            return "same_version_other_figures"
        return "restated" if self.restated else None

    def as_stored(self) -> dict[str, Any]:
        """The version (and digest) fields a document has once this part is applied."""
        stored = {self.version_field: self.version}
        if self.digest_field:
            stored[self.digest_field] = self.digest
        return stored


@dataclass(frozen=True)
class OfferChange:
    """An offer's new status (and, when created, its terms); applied once per event id, in offer order."""

    offer_id: str
    event_id: str
    fields: Mapping[str, Any]


def merge(doc: Mapping[str, Any] | None, part: VersionedPart) -> dict[str, Any] | None:
    """The document with `part` applied, or None when the document already has this version or a newer one."""
    if not part.is_newer_than(doc):
        return None
    base = dict(doc) if doc is not None else {"_id": part.doc_id}
    return {**base, **part.fields, part.version_field: part.version}


def fold(
    parts: Iterable[VersionedPart], current: Mapping[DocKey, Mapping[str, Any]] | None = None
) -> dict[DocKey, dict[str, Any]]:
    """The documents after applying `parts` to `current`; the result does not depend on the parts' order."""
    state: dict[DocKey, dict[str, Any]] = {key: dict(doc) for key, doc in (current or {}).items()}
    for part in parts:
        merged = merge(state.get(part.key), part)
        if merged is not None:
            state[part.key] = merged
    return state


def batch_updates(
    parts: Iterable[VersionedPart], stored: Mapping[DocKey, Mapping[str, Any]]
) -> dict[DocKey, dict[str, Any]]:
    """Per document, the fields to set so that it equals `fold(parts, stored)`; unchanged documents are absent.

    `stored` needs only the version (and digest) fields of each document. Per document and version field
    the parts are taken in order: one replaces the current winner when it is newer than it (the first of
    equal versions and digests: a redelivery carries the same fields); the winner's fields and version are set.
    """
    winners: dict[tuple[DocKey, str], VersionedPart] = {}
    for part in parts:
        slot = (part.key, part.version_field)
        best = winners.get(slot)
        if part.is_newer_than(best.as_stored() if best is not None else stored.get(part.key)):
            winners[slot] = part
    updates: dict[DocKey, dict[str, Any]] = {}
    for (key, version_field), part in winners.items():
        updates.setdefault(key, {}).update({**part.fields, version_field: part.version})
    return updates


@dataclass(frozen=True)
class OfferUpdate:
    """What a batch changes on one offer: fields to set, and the event ids applied (in order)."""

    fields: Mapping[str, Any]
    event_ids: tuple[str, ...]


def fold_offer_changes(
    changes: Iterable[OfferChange], applied: Mapping[str, Iterable[str]]
) -> dict[str, OfferUpdate]:
    """Per offer, the changes not applied yet folded in order (later fields win); `applied` holds the event
    ids each offer already recorded. Offers with nothing new are absent."""
    seen = {offer_id: set(ids) for offer_id, ids in applied.items()}
    fields: dict[str, dict[str, Any]] = {}
    ids: dict[str, list[str]] = {}
    for change in changes:
        done = seen.setdefault(change.offer_id, set())
        if change.event_id in done:
            continue
        done.add(change.event_id)
        fields.setdefault(change.offer_id, {}).update(change.fields)
        ids.setdefault(change.offer_id, []).append(change.event_id)
    return {offer_id: OfferUpdate(fields[offer_id], tuple(ids[offer_id])) for offer_id in fields}


def organisation_part(event: _OrganisationEvent) -> VersionedPart:
    """Public facts of a facilitator organisation, guarded by its `version` and its state's digest (the same
    version with other content, or a restated state that differs, repairs the document)."""
    org = event.organisation
    return VersionedPart(
        "organisations",
        org.organisation_id,
        "version",
        org.version,
        {
            "state_digest": event.organisation_digest(),
            "state_check": state_check(event.organisation_digest()),
            "organisation_id": org.organisation_id,
            "name": org.name,
            "kind": org.kind.value,
            "area_codes": list(org.area_codes),
            "status": org.status.value,
        },
        digest_field="state_digest",
        restated=event.restated,
    )


def state_check(digest: str) -> int:
    """A number from a state's digest, summed into the read models' fingerprint (export ETags), so a repair
    that keeps the version still changes it."""
    return int(digest[:8], 16)


def recipient_part(event: _RecipientEvent, now: datetime) -> VersionedPart:
    """A recipient's public facts with area names; RT numbers and anything not public are never kept.

    Guarded by the recipient's `version` and its state's digest: the same version with other content, or a
    restated state that differs, repairs the document (the registry is authoritative).
    """
    rec = event.recipient
    return VersionedPart(
        "recipients",
        rec.recipient_id,
        "version",
        rec.version,
        {
            "state_digest": event.recipient_digest(),
            "state_check": state_check(event.recipient_digest()),
            "recipient_id": rec.recipient_id,
            "name": rec.name,
            "kind": rec.kind.value,
            "kind_description": rec.kind_description,
            "organisation_id": rec.organisation_id,
            **area_fields(rec.kelurahan_code),
            "rw": rec.rw,
            "beneficiaries": rec.beneficiaries.model_dump(mode="json"),
            "status": rec.status.value,
            "updated_at": event.occurred_at,
            "projected_at": now,
        },
        digest_field="state_digest",
        restated=event.restated,
    )


def need_part(event: _NeedEvent, now: datetime) -> VersionedPart:
    """The registry's part of a need document (the need's terms), guarded by the need's `version` and its
    state's digest (a version reused with other content, or a restated state that differs, repairs it)."""
    need = event.need
    data = need.model_dump(mode="json")
    return VersionedPart(
        "needs",
        need.need_id,
        "version",
        need.version,
        {
            "state_digest": event.need_digest(),
            "state_check": state_check(event.need_digest()),
            "need_id": need.need_id,
            "recipient_id": need.recipient_id,
            "organisation_id": need.organisation_id,
            **area_fields(need.kelurahan_code),
            "rw": need.rw,
            "item": data["item"],
            "item_description": need.item_description,
            "quantity": need.quantity,
            "unit": need.unit,
            "priority": data["priority"],
            "needed_by": data["needed_by"],
            "recurrence": data["recurrence"],
            "series_id": need.series_id,
            "period_start": data["period_start"],
            "status": data["status"],
            "updated_at": event.occurred_at,
            "projected_at": now,
        },
        digest_field="state_digest",
        restated=event.restated,
    )


def ledger_part(event: NeedLedgerChanged, now: datetime) -> VersionedPart:
    """The pledges service's part of a need document (its progress), guarded by `ledger_version` and the
    figures' digest (a version reused with other figures, or a restated state, repairs the progress)."""
    return VersionedPart(
        "needs",
        event.need_id,
        "ledger_version",
        event.ledger_version,
        {
            "ledger_digest": event.figures_digest(),
            "recipient_id": event.recipient_id,
            "progress": {
                "requested": event.requested,
                "committed": event.committed,
                "in_transit": event.in_transit,
                "delivered": event.delivered,
            },
            "ledger_status": event.need_status.value,
            "ledger_at": event.occurred_at,
            "projected_at": now,
        },
        digest_field="ledger_digest",
        restated=event.restated,
    )


def donor_part(event: DonorProfileUpdated) -> VersionedPart:
    """A donor's public profile: the name is kept only when the donor opted in, otherwise never stored.

    Guarded by the profile's `version` and its digest: the same version with another profile, or a restated
    profile that differs, repairs the document (the pledges service is authoritative)."""
    shown = event.display_name if event.show_name and event.display_name else None
    digest = event.profile_digest()
    return VersionedPart(
        "donors",
        event.donor_id,
        "version",
        event.version,
        {
            "state_digest": digest,
            "state_check": state_check(digest),
            "donor_id": event.donor_id,
            "kind": event.kind.value,
            "display_name": shown,
        },
        digest_field="state_digest",
        restated=event.restated,
    )


def pledge_part(event: _PledgeEvent) -> VersionedPart:
    """A pledge's current state (statistics count donors of live pledges), guarded by its `version` and its
    state's digest: the same version with other content, or a restatement that differs, repairs it."""
    pledge = event.pledge
    return VersionedPart(
        "pledges",
        pledge.pledge_id,
        "version",
        pledge.version,
        {
            "state_digest": event.pledge_digest(),
            "pledge_id": pledge.pledge_id,
            "need_id": pledge.need_id,
            "recipient_id": pledge.recipient_id,
            "donor_id": pledge.donor_id,
            "item": pledge.item.value,
            "quantity": pledge.quantity,
            "status": pledge.status.value,
            "updated_at": event.occurred_at,
        },
        digest_field="state_digest",
        restated=event.restated,
    )


def offer_change(event: OfferEvent, event_id: str) -> OfferChange:
    """An offer's status after an offer or match event; only statistics use offers."""
    data = event.model_dump(mode="json")
    fields = {
        "offer_id": data["offer_id"],
        "donor_id": data["donor_id"],
        "status": OFFER_STATUS[type(event)],
        "status_at": data["occurred_at"],
    }
    return OfferChange(data["offer_id"], event_id, fields)


def offer_created_change(event: OfferCreated, event_id: str) -> OfferChange:
    """A new offer: its status and its terms."""
    data = event.model_dump(mode="json")
    change = offer_change(event, event_id)
    terms = {k: data[k] for k in ("item", "quantity", "area_codes", "available_until")}
    return OfferChange(change.offer_id, event_id, {**change.fields, **terms})
