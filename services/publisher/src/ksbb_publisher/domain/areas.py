"""Area attribution of read-model documents from a Kemendagri kelurahan code."""

from __future__ import annotations

from typing import Any

from ksbb_contracts.areas import UnknownArea, areas


def area_fields(kelurahan_code: str) -> dict[str, Any]:
    """Codes and names of provinsi, kota, kecamatan and kelurahan; names are None for unknown codes."""
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


def area_name(code: str) -> str | None:
    """The name of any area code, or None."""
    area = areas().get(code)
    return area.name if area else None
