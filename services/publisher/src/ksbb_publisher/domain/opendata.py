"""Open-data tables: columns with their HXL hashtags, the flat record of each row, CSV / HXL-JSON encoding."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ksbb_publisher.domain.areas import area_of

Dataset = Literal["recipients", "needs", "deliveries"]
Format = Literal["csv", "json"]
DATASETS: tuple[str, ...] = ("recipients", "needs", "deliveries")
FORMATS: tuple[str, ...] = ("csv", "json")

ATTRIBUTION = (
    "Kemendagri area codes and names: idn-area-data 4.0.1 (fityannugroho), Open Database License (ODbL) v1.0."
)


@dataclass(frozen=True)
class Column:
    """One column of an open-data table: field key, header text and HXL hashtag."""

    key: str
    header: str
    hashtag: str


_AREA_COLUMNS = (
    Column("provinsi_code", "Provinsi code", "#adm1+code"),
    Column("provinsi_name", "Provinsi", "#adm1+name"),
    Column("kota_code", "Kota code", "#adm2+code"),
    Column("kota_name", "Kota", "#adm2+name"),
    Column("kecamatan_code", "Kecamatan code", "#adm3+code"),
    Column("kecamatan_name", "Kecamatan", "#adm3+name"),
    Column("kelurahan_code", "Kelurahan code", "#adm4+code"),
    Column("kelurahan_name", "Kelurahan", "#adm4+name"),
    Column("rw", "RW", "#loc+rw"),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "recipients": (
        Column("recipient_id", "Recipient ID", "#loc+code"),
        Column("name", "Recipient", "#loc+name"),
        Column("kind", "Kind", "#loc+type"),
        Column("organisation_id", "Organisation ID", "#org+code"),
        Column("organisation_name", "Organisation", "#org+name"),
        *_AREA_COLUMNS,
        Column("households", "Households", "#targeted+hh"),
        Column("people", "People", "#targeted+ind"),
        Column("households_reached", "Households reached", "#reached+hh"),
        Column("open_needs", "Open needs", "#need+open+num"),
        Column("status", "Status", "#status"),
        Column("updated_at", "Updated", "#date+updated"),
    ),
    "needs": (
        Column("need_id", "Need ID", "#need+code"),
        Column("recipient_id", "Recipient ID", "#loc+code"),
        Column("recipient_name", "Recipient", "#loc+name"),
        Column("organisation_id", "Organisation ID", "#org+code"),
        Column("organisation_name", "Organisation", "#org+name"),
        *_AREA_COLUMNS,
        Column("item", "Item", "#item+code"),
        Column("item_description", "Item description", "#item+name"),
        Column("unit", "Unit", "#meta+unit"),
        Column("requested", "Requested", "#need+num"),
        Column("committed", "Committed", "#need+committed+num"),
        Column("in_transit", "In transit", "#need+transit+num"),
        Column("delivered", "Delivered", "#reached+num"),
        Column("priority", "Priority", "#severity"),
        Column("needed_by", "Needed by", "#date+deadline"),
        Column("status", "Status", "#status"),
        Column("updated_at", "Updated", "#date+updated"),
    ),
    "deliveries": (
        Column("pledge_id", "Pledge ID", "#activity+code"),
        Column("delivered_at", "Delivered at", "#date+reported"),
        Column("need_id", "Need ID", "#need+code"),
        Column("recipient_id", "Recipient ID", "#loc+code"),
        Column("recipient_name", "Recipient", "#loc+name"),
        Column("organisation_id", "Organisation ID", "#org+code"),
        Column("organisation_name", "Organisation", "#org+name"),
        *_AREA_COLUMNS,
        Column("item", "Item", "#item+code"),
        Column("quantity", "Quantity delivered", "#reached+num"),
        Column("households", "Households of the recipient", "#reached+hh"),
        Column("status", "Status", "#status"),
    ),
}


def iso(value: Any) -> Any:
    """A datetime as ISO 8601 text; anything else unchanged."""
    return value.isoformat() if isinstance(value, datetime) else value


def recipient_record(public: Mapping[str, Any]) -> dict[str, Any]:
    """The row of the recipients table from a public recipient view."""
    return {
        **public,
        **public["area"],
        "households": public["beneficiaries"].get("households"),
        "people": public["beneficiaries"].get("people"),
        "updated_at": iso(public.get("updated_at")),
    }


def need_record(public: Mapping[str, Any]) -> dict[str, Any]:
    """The row of the needs table from a public need view (progress figures as columns)."""
    return {**public, **public["area"], **public["progress"], "updated_at": iso(public.get("updated_at"))}


def delivery_record(
    entry: Mapping[str, Any], recipient: Mapping[str, Any], organisation_name: str | None
) -> dict[str, Any]:
    """The row of the deliveries table from a `delivered` feed entry and its (public) recipient."""
    return {
        **area_of(entry),
        "pledge_id": entry["pledge_id"],
        "delivered_at": iso(entry["occurred_at"]),
        "need_id": entry["need_id"],
        "recipient_id": entry["recipient_id"],
        "recipient_name": recipient.get("name"),
        "rw": recipient.get("rw"),
        "organisation_id": entry["organisation_id"],
        "organisation_name": organisation_name,
        "item": entry["item"],
        "quantity": entry.get("delivered_quantity"),
        "households": (recipient.get("beneficiaries") or {}).get("households"),
        "status": "delivered",
    }


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def csv_lines(rows: Sequence[Sequence[Any]]) -> str:
    """CSV text of some rows (RFC 4180 quoting, CRLF line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def header_rows(dataset: str) -> list[list[str]]:
    """The header row and the HXL hashtag row of a dataset."""
    columns = COLUMNS[dataset]
    return [[c.header for c in columns], [c.hashtag for c in columns]]


def row_values(dataset: str, record: dict[str, Any]) -> list[Any]:
    """The cells of one record in column order."""
    return [record.get(c.key) for c in COLUMNS[dataset]]


def json_row(values: Sequence[Any]) -> str:
    """One row of the HXL-JSON "arrays" style (header row, hashtag row, then data rows)."""
    return json.dumps(list(values), ensure_ascii=False, default=str)
