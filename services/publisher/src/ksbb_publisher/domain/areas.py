"""Area attribution of read-model documents from a Kemendagri kelurahan code, and area filters."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ksbb_contracts.areas import UnknownArea, areas

from ksbb_publisher.domain.errors import UnknownAreaCode

#: The area fields every recipient, need and feed document carries.
AREA_KEYS = (
    "provinsi_code",
    "provinsi_name",
    "kota_code",
    "kota_name",
    "kecamatan_code",
    "kecamatan_name",
    "kelurahan_code",
    "kelurahan_name",
)


def area_fields(kelurahan_code: str) -> dict[str, Any]:
    """Codes and names of provinsi, kota, kecamatan and kelurahan; names are None for unknown codes."""
    # The reference data never changes while running: each code's lineage is looked up once (a projection
    # batch asks for the same few hundred kelurahan thousands of times). A fresh dict for every caller.
    return dict(_area_fields(kelurahan_code))


@lru_cache(maxsize=4096)
def _area_fields(kelurahan_code: str) -> dict[str, Any]:
    try:
        lineage = areas().lineage(kelurahan_code)
    except UnknownArea:
        parts = kelurahan_code.split(".")
        return {
            "provinsi_code": parts[0],
            "provinsi_name": None,
            "kota_code": ".".join(parts[:2]),
            "kota_name": None,
            "kecamatan_code": ".".join(parts[:3]),
            "kecamatan_name": None,
            "kelurahan_code": kelurahan_code,
            "kelurahan_name": None,
        }
    return {
        "provinsi_code": lineage.provinsi.code,
        "provinsi_name": lineage.provinsi.name,
        "kota_code": lineage.kota.code,
        "kota_name": lineage.kota.name,
        "kecamatan_code": lineage.kecamatan.code,
        "kecamatan_name": lineage.kecamatan.name,
        "kelurahan_code": lineage.kelurahan.code,
        "kelurahan_name": lineage.kelurahan.name,
    }


def area_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The area fields of a read-model document (missing ones as None)."""
    return {k: doc.get(k) for k in AREA_KEYS}


def is_area_of_level(code: str | None, level: str) -> bool:
    """Whether `code` is a known area code of this level (kota, kecamatan, kelurahan)."""
    area = areas().get(code) if code else None
    return area is not None and area.level == level


def checked_area_code(value: str | None, level: str, field: str) -> str | None:
    """An area filter: None when absent or empty; UnknownAreaCode when not a known code of the level."""
    if value is None or value == "":
        return None
    if not is_area_of_level(value, level):
        raise UnknownAreaCode(value, level, field)
    return value
