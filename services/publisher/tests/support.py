"""Test support of the publisher: realistic public events and their envelopes, and an in-memory projection
store (the domain's merge rule, for fast unit tests of the use cases)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ksbb_contracts import CloudEvent, Event
from ksbb_contracts.events import (
    Beneficiaries,
    DonorProfileUpdated,
    NeedLedgerChanged,
    NeedOpened,
    NeedPublic,
    OrganisationPublic,
    OrganisationRegistered,
    PledgeCreated,
    PledgeDelivered,
    PledgePublic,
    RecipientActivated,
    RecipientPublic,
)
from ksbb_contracts.vocab import (
    DeliveryMode,
    DonorKind,
    Item,
    NeedStatus,
    OrganisationKind,
    OrganisationStatus,
    PledgeStatus,
    Priority,
    RecipientKind,
    RecipientStatus,
)
from ksbb_publisher.domain.projection import DocKey, OfferChange, VersionedPart, merge

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def organisation(org_id: str, name: str, version: int = 1) -> OrganisationRegistered:
    """An organisation registration."""
    return OrganisationRegistered(
        organisation=OrganisationPublic(
            organisation_id=org_id,
            name=name,
            kind=OrganisationKind.NGO,
            area_codes=["31.71"],
            status=OrganisationStatus.ACTIVE,
            version=version,
        )
    )


def recipient(
    recipient_id: str,
    org_id: str,
    kelurahan: str,
    name: str,
    *,
    kind: RecipientKind = RecipientKind.RW_RENTAN,
    households: int = 40,
    rw: int | None = 3,
    version: int = 2,
    at: datetime = NOW,
    cls: type[Any] = RecipientActivated,
    status: RecipientStatus = RecipientStatus.ACTIVE,
) -> Any:
    """A recipient lifecycle event."""
    return cls(
        recipient=RecipientPublic(
            recipient_id=recipient_id,
            name=name,
            kind=kind,
            organisation_id=org_id,
            kelurahan_code=kelurahan,
            rw=rw,
            rt=2,
            beneficiaries=Beneficiaries(households=households, people=households * 4),
            status=status,
            version=version,
        ),
        occurred_at=at,
    )


def need(
    need_id: str,
    recipient_id: str,
    org_id: str,
    kelurahan: str,
    *,
    item: Item = Item.SEMBAKO,
    quantity: int = 40,
    version: int = 1,
    status: NeedStatus = NeedStatus.OPEN,
    at: datetime = NOW,
    cls: type[Any] = NeedOpened,
) -> Any:
    """A need lifecycle event."""
    return cls(
        need=NeedPublic(
            need_id=need_id,
            recipient_id=recipient_id,
            organisation_id=org_id,
            kelurahan_code=kelurahan,
            rw=3,
            item=item,
            quantity=quantity,
            unit="paket",
            priority=Priority.HIGH,
            needed_by=date(2026, 2, 1),
            status=status,
            version=version,
        ),
        occurred_at=at,
    )


def ledger(
    need_id: str,
    recipient_id: str,
    *,
    requested: int,
    committed: int = 0,
    in_transit: int = 0,
    delivered: int = 0,
    version: int,
    status: NeedStatus = NeedStatus.OPEN,
    at: datetime = NOW,
) -> NeedLedgerChanged:
    """A need ledger change."""
    return NeedLedgerChanged(
        need_id=need_id,
        recipient_id=recipient_id,
        requested=requested,
        committed=committed,
        in_transit=in_transit,
        delivered=delivered,
        ledger_version=version,
        need_status=status,
        occurred_at=at,
    )


def donor(donor_id: str, name: str | None, *, show: bool, version: int = 1) -> DonorProfileUpdated:
    """A donor's public profile."""
    return DonorProfileUpdated(
        donor_id=donor_id, kind=DonorKind.PERSON, display_name=name, show_name=show, version=version
    )


def pledge(
    pledge_id: str,
    need_id: str,
    recipient_id: str,
    org_id: str,
    donor_id: str,
    kelurahan: str,
    *,
    quantity: int = 10,
    version: int = 1,
    at: datetime = NOW,
    delivered: int | None = None,
    item: Item = Item.SEMBAKO,
) -> Any:
    """PledgeCreated, or PledgeDelivered when `delivered` is given."""
    public = PledgePublic(
        pledge_id=pledge_id,
        need_id=need_id,
        recipient_id=recipient_id,
        organisation_id=org_id,
        donor_id=donor_id,
        kelurahan_code=kelurahan,
        item=item,
        quantity=quantity,
        delivered_quantity=delivered,
        mode=DeliveryMode.OWN_DELIVERY,
        planned_date=date(2026, 1, 10),
        status=PledgeStatus.DELIVERED if delivered is not None else PledgeStatus.PLEDGED,
        version=version,
    )
    if delivered is not None:
        return PledgeDelivered(pledge=public, occurred_at=at, received_quantity=delivered)
    return PledgeCreated(pledge=public, occurred_at=at)


def minutes(n: float) -> timedelta:
    """A timedelta of n minutes."""
    return timedelta(minutes=n)


def envelope_of(event: Event, event_id: str | None = None) -> CloudEvent:
    """The CloudEvents envelope of an event, as its owner would publish it."""
    return CloudEvent(
        id=event_id or f"evt_{uuid.uuid4().hex}",
        source="/ksbb/test",
        type=event.event_type,
        subject="test",
        time=NOW,
        data=event.model_dump(mode="json"),
    )


class MemoryProjectionStore:
    """The projection store port in memory: versioned parts merge by `domain.projection.merge`."""

    def __init__(self) -> None:
        self.docs: dict[DocKey, dict[str, Any]] = {}
        self.offers: dict[str, dict[str, Any]] = {}
        self.offer_events: set[str] = set()
        self.feed: list[dict[str, Any]] = []
        self._last_seq = 0

    async def ensure_indexes(self) -> None:
        """Nothing to index in memory."""

    async def apply_part(self, part: VersionedPart) -> bool:
        """Merge the part into its document."""
        merged = merge(self.docs.get(part.key), part)
        if merged is None:
            return False
        self.docs[part.key] = merged
        return True

    async def apply_offer(self, change: OfferChange) -> bool:
        """Apply an offer change once per event id."""
        if change.event_id in self.offer_events:
            return False
        self.offer_events.add(change.event_id)
        self.offers.setdefault(change.offer_id, {"_id": change.offer_id}).update(change.fields)
        return True

    async def insert_feed_entry(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        """Append a new entry with the next `seq`; None when the entry id is known."""
        if any(e["_id"] == entry["_id"] for e in self.feed):
            return None
        self._last_seq += 1
        stored = {**entry, "seq": self._last_seq}
        self.feed.append(stored)
        return stored

    async def apply_parts(self, parts: Sequence[VersionedPart]) -> int:
        """Merge parts one by one (the reference the Mongo store's batch fold must agree with)."""
        return sum([await self.apply_part(part) for part in parts])

    async def apply_offers(self, changes: Sequence[OfferChange]) -> int:
        """Apply offer changes one by one."""
        return sum([await self.apply_offer(change) for change in changes])

    async def insert_feed_entries(self, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append new entries one by one."""
        stored = [await self.insert_feed_entry(entry) for entry in entries]
        return [entry for entry in stored if entry is not None]

    async def reset(self) -> None:
        """Forget every read model (feed numbers are not reused)."""
        self.docs.clear()
        self.offers.clear()
        self.offer_events.clear()
        self.feed.clear()

    def model(self, name: str) -> dict[str, dict[str, Any]]:
        """The documents of one read model by id."""
        return {doc_id: doc for (model, doc_id), doc in self.docs.items() if model == name}
