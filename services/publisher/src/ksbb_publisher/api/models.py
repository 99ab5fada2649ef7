"""Public response models: only what is listed here can leave the service (extra fields are dropped)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Public(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AreaOut(_Public):
    """Kemendagri codes and names of a place (names from idn-area-data, ODbL)."""

    provinsi_code: str | None = None
    provinsi_name: str | None = None
    kota_code: str | None = None
    kota_name: str | None = None
    kecamatan_code: str | None = None
    kecamatan_name: str | None = None
    kelurahan_code: str | None = None
    kelurahan_name: str | None = None


class BeneficiariesOut(_Public):
    """Counts of people a recipient serves."""

    households: int = 0
    people: int = 0
    children: int = 0
    elderly: int = 0
    disabled: int = 0


class ProgressOut(_Public):
    """Need ledger quantities."""

    requested: int
    committed: int
    in_transit: int
    delivered: int
    remaining: int
    percent_delivered: int
    percent_pledged: int


class NeedOut(_Public):
    """A public need with its progress."""

    need_id: str
    recipient_id: str
    recipient_name: str | None
    organisation_id: str | None
    organisation_name: str | None
    area: AreaOut
    rw: int | None
    item: str
    item_description: str | None
    quantity: int
    unit: str
    priority: str
    needed_by: str
    recurrence: str | None
    status: str
    progress: ProgressOut
    updated_at: datetime | None


class RecipientOut(_Public):
    """A public recipient unit (never its contact person, phone, e-mail, address or notes)."""

    recipient_id: str
    name: str
    kind: str
    kind_description: str | None
    organisation_id: str
    organisation_name: str | None
    area: AreaOut
    rw: int | None
    beneficiaries: BeneficiariesOut
    status: str
    open_needs: int
    packages_delivered: int
    households_reached: int
    updated_at: datetime | None


class RecipientDetailOut(RecipientOut):
    """A recipient with its needs."""

    needs: list[NeedOut]


class RecipientPage(_Public):
    """A page of recipients; pass `next_cursor` as `cursor` for the next page."""

    items: list[RecipientOut]
    next_cursor: str | None


class NeedPage(_Public):
    """A page of needs."""

    items: list[NeedOut]
    next_cursor: str | None


class OrganisationOut(_Public):
    """A facilitator organisation."""

    organisation_id: str
    name: str
    kind: str
    status: str
    area_codes: list[str]


class FeedEntryOut(_Public):
    """One activity: a pledge made, confirmed, dispatched, delivered, cancelled, rejected or expired."""

    id: str
    seq: int = Field(
        description="Insertion sequence: the SSE `id`; numbers restart above the old ones after a rebuild"
    )
    kind: str
    pledge_id: str
    need_id: str
    recipient_id: str
    recipient_name: str | None
    donor_name: str
    donor_named: bool
    item: str
    quantity: int
    delivered_quantity: int | None
    area: AreaOut
    occurred_at: datetime


class FeedPage(_Public):
    """Feed entries, newest first; `next_cursor` continues with older entries."""

    items: list[FeedEntryOut]
    next_cursor: str | None


class StatRow(_Public):
    """Figures for one area or recipient kind."""

    code: str
    name: str | None
    recipients: int
    households_targeted: int
    households_reached: int
    packages_delivered: int
    donors: int


class ItemStatRow(_Public):
    """Figures for one aid item."""

    code: str
    needs: int
    requested: int
    packages_delivered: int
    donors: int


class StatsOut(_Public):
    """Programme statistics."""

    totals: StatRow
    by_kota: list[StatRow]
    by_kecamatan: list[StatRow]
    by_kelurahan: list[StatRow]
    by_kind: list[StatRow]
    by_item: list[ItemStatRow]


class GapRecipient(_Public):
    """A recipient with open needs and no recent delivery."""

    recipient_id: str
    name: str
    kind: str
    area: AreaOut
    rw: int | None
    households: int
    open_needs: int
    last_delivery_at: datetime | None


class GapArea(_Public):
    """An area with recipients in a coverage gap."""

    code: str
    name: str | None
    recipients: int
    households: int


class GapAreas(_Public):
    """Coverage gaps per level."""

    kota: list[GapArea]
    kecamatan: list[GapArea]
    kelurahan: list[GapArea]


class CoverageGapsOut(_Public):
    """Areas and recipients with open needs and no delivery since `since`."""

    days: int
    since: datetime
    recipients: list[GapRecipient]
    areas: GapAreas


class SnapshotFileOut(_Public):
    """One file of a snapshot."""

    name: str
    dataset: str
    format: str
    bytes: int
    sha256: str
    url: str


class SnapshotOut(_Public):
    """A daily open-data snapshot."""

    snapshot_id: str
    taken_at: datetime
    files: list[SnapshotFileOut]


class SnapshotList(_Public):
    """Every snapshot, newest first, plus the live exports."""

    attribution: str
    live_exports: list[str]
    snapshots: list[SnapshotOut]
