"""Where things are: DKI Jakarta area codes (Kemendagri) and coordinates, checked against reference data."""

from __future__ import annotations

from dataclasses import dataclass

from ksbb_contracts.areas import Area, AreaLevel, UnknownArea, areas, in_jakarta

from ksbb_registry.domain.errors import AreaMismatch, AreaNotFound, OutsideJakarta, UnknownAreaCode


@dataclass(frozen=True)
class Location:
    """A validated kelurahan with its kecamatan and kota codes."""

    kelurahan_code: str
    kecamatan_code: str
    kota_code: str


def validate_location(
    kelurahan_code: str, *, kecamatan_code: str | None = None, kota_code: str | None = None
) -> Location:
    """Check a kelurahan code (and optional kecamatan/kota codes against its lineage)."""
    try:
        lineage = areas().lineage(kelurahan_code)
    except UnknownArea as exc:
        raise UnknownAreaCode(f"unknown kelurahan code {kelurahan_code!r}", field="kelurahan_code") from exc
    if kecamatan_code is not None and kecamatan_code != lineage.kecamatan.code:
        raise AreaMismatch(
            f"kelurahan {kelurahan_code} lies in kecamatan {lineage.kecamatan.code}, not {kecamatan_code}",
            field="kecamatan_code",
        )
    if kota_code is not None and kota_code != lineage.kota.code:
        raise AreaMismatch(
            f"kelurahan {kelurahan_code} lies in kota {lineage.kota.code}, not {kota_code}", field="kota_code"
        )
    return Location(lineage.kelurahan.code, lineage.kecamatan.code, lineage.kota.code)


def validate_area_codes(codes: list[str], field: str = "area_codes") -> list[str]:
    """Check that every code is a known area (any level); returns them sorted without duplicates."""
    directory = areas()
    for index, code in enumerate(codes):
        if code not in directory:
            raise UnknownAreaCode(f"unknown area code {code!r}", field=f"{field}.{index}")
    return sorted(set(codes))


def validate_coordinates(lat: float, lon: float) -> None:
    """Coordinates must fall inside Jakarta's bounding box."""
    if not in_jakarta(lat, lon):
        raise OutsideJakarta()


def list_areas(parent: str | None = None, level: AreaLevel | None = None) -> list[Area]:
    """The children of `parent`, else every area of `level`, else every area."""
    directory = areas()
    if parent is not None:
        if parent not in directory:
            raise UnknownAreaCode(f"unknown area code {parent!r}", field="parent")
        return list(directory.children(parent))
    if level is not None:
        return list(directory.level(level))
    return list(directory)


def find_area(code: str) -> Area:
    """One area by its code."""
    try:
        return areas().require(code)
    except UnknownArea as exc:
        raise AreaNotFound(str(exc), field="code") from exc
