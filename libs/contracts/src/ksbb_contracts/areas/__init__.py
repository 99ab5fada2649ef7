"""DKI Jakarta administrative areas with official Kemendagri codes, loaded from packaged reference data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from importlib.resources import files
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = [
    "DATA_FILE",
    "DATA_VERSION",
    "JAKARTA_BBOX",
    "LEVELS",
    "PROVINCE_CODE",
    "Area",
    "AreaDirectory",
    "AreaLevel",
    "AreaLineage",
    "AreaNode",
    "BoundingBox",
    "UnknownArea",
    "areas",
    "in_jakarta",
]

AreaLevel = Literal["provinsi", "kota", "kecamatan", "kelurahan"]

#: Levels from the top (province) down to the kelurahan.
LEVELS: tuple[AreaLevel, ...] = ("provinsi", "kota", "kecamatan", "kelurahan")

#: Kemendagri code of the province DKI Jakarta.
PROVINCE_CODE = "31"

#: Name of the packaged data file (see PROVENANCE.md beside it).
DATA_FILE = "dki_jakarta.json"

#: Version of the packaged data; equals the file's "version" field (checked by the tests and on load).
DATA_VERSION = "idn-area-data@4.0.1"

_CODE_PATTERNS: dict[str, re.Pattern[str]] = {
    "provinsi": re.compile(r"\d{2}"),
    "kota": re.compile(r"\d{2}\.\d{2}"),
    "kecamatan": re.compile(r"\d{2}\.\d{2}\.\d{2}"),
    "kelurahan": re.compile(r"\d{2}\.\d{2}\.\d{2}\.\d{4}"),
}


class UnknownArea(LookupError):
    """Raised when a code is not a known area (of the expected level)."""

    def __init__(self, code: str, expected: str | None = None) -> None:
        self.code = code
        self.expected = expected
        what = f"{expected} " if expected else "area "
        super().__init__(f"unknown {what}code {code!r}")


class Area(BaseModel):
    """One administrative area: provinsi, kota (incl. kabupaten administrasi), kecamatan or kelurahan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    level: AreaLevel
    parent: str | None
    official_name: str | None = None

    @model_validator(mode="after")
    def _check_code(self) -> Area:
        """Check that the code has the Kemendagri format of its level and extends its parent code."""
        if not _CODE_PATTERNS[self.level].fullmatch(self.code):
            raise ValueError(f"code {self.code!r} does not match the format of level {self.level!r}")
        if self.level == "provinsi":
            if self.parent is not None:
                raise ValueError("a provinsi has no parent")
        elif self.parent is None or not self.code.startswith(self.parent + "."):
            raise ValueError(f"code {self.code!r} is not prefixed by its parent code {self.parent!r}")
        return self


class AreaLineage(BaseModel):
    """The chain of areas from the province down to one kelurahan."""

    model_config = ConfigDict(frozen=True)

    provinsi: Area
    kota: Area
    kecamatan: Area
    kelurahan: Area


class AreaNode(BaseModel):
    """An area with its children, for nested views such as frontend pickers."""

    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    level: AreaLevel
    children: list[AreaNode] = []


class BoundingBox(NamedTuple):
    """A latitude/longitude rectangle in WGS 84 degrees (bounds inclusive)."""

    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the point lies inside the rectangle (NaN is never inside)."""
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


#: Coarse rectangle around all of DKI Jakarta: the mainland (about -6.37..-6.08 lat, 106.68..106.98 lon)
#: and Kepulauan Seribu up to Pulau Sabira (about -5.20 lat) and Pulau Pabelokan (about 106.39 lon).
#: It also covers sea and parts of neighbouring Banten/West Java (Tangerang, Depok, Bekasi), so it is
#: a cheap plausibility filter for coordinates, not a point-in-boundary test.
JAKARTA_BBOX = BoundingBox(min_lat=-6.40, max_lat=-5.10, min_lon=106.35, max_lon=107.00)


def in_jakarta(lat: float, lon: float) -> bool:
    """Whether a WGS 84 point lies inside JAKARTA_BBOX (coarse check, see its comment)."""
    return JAKARTA_BBOX.contains(lat, lon)


class AreaDirectory:
    """Read-only index of areas with lookups by code, level and hierarchy."""

    def __init__(self, items: Iterable[Area], version: str, source: Mapping[str, str] | None = None) -> None:
        self.version = version
        self.source: dict[str, str] = dict(source or {})
        self._by_code: dict[str, Area] = {}
        self._children: dict[str, list[Area]] = {}
        for area in items:
            if area.code in self._by_code:
                raise ValueError(f"duplicate area code {area.code!r}")
            self._by_code[area.code] = area
        for area in sorted(self._by_code.values(), key=lambda a: a.code):
            self._children.setdefault(area.code, [])
            if area.parent is None:
                continue
            parent = self._by_code.get(area.parent)
            if parent is None:
                raise ValueError(f"area {area.code!r} has unknown parent {area.parent!r}")
            if LEVELS.index(parent.level) != LEVELS.index(area.level) - 1:
                raise ValueError(f"area {area.code!r} ({area.level}) has parent of level {parent.level!r}")
            self._children.setdefault(parent.code, []).append(area)
        roots = [a for a in self._by_code.values() if a.parent is None]
        if len(roots) != 1:
            raise ValueError(f"expected exactly one provinsi, found {len(roots)}")
        self._root = roots[0]

    def __len__(self) -> int:
        """Number of areas of all levels."""
        return len(self._by_code)

    def __iter__(self) -> Iterator[Area]:
        """All areas, ordered by code (depth first)."""
        return iter(sorted(self._by_code.values(), key=lambda a: a.code))

    def __contains__(self, code: object) -> bool:
        """Whether the code is a known area of any level."""
        return isinstance(code, str) and code in self._by_code

    @property
    def province(self) -> Area:
        """The single provinsi at the top."""
        return self._root

    def get(self, code: str) -> Area | None:
        """The area with this code, or None."""
        return self._by_code.get(code)

    def require(self, code: str) -> Area:
        """The area with this code; raises UnknownArea."""
        area = self._by_code.get(code)
        if area is None:
            raise UnknownArea(code)
        return area

    def children(self, code: str) -> list[Area]:
        """Direct children of an area ordered by code (empty for a kelurahan); raises UnknownArea."""
        if code not in self._by_code:
            raise UnknownArea(code)
        return list(self._children[code])

    def level(self, level: AreaLevel) -> list[Area]:
        """All areas of one level ordered by code."""
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")
        return [a for a in self if a.level == level]

    def is_kelurahan(self, code: str) -> bool:
        """Whether the code is a known kelurahan."""
        area = self._by_code.get(code)
        return area is not None and area.level == "kelurahan"

    def kelurahan(self, code: str) -> Area:
        """The kelurahan with this code; raises UnknownArea for any other code."""
        area = self._by_code.get(code)
        if area is None or area.level != "kelurahan":
            raise UnknownArea(code, "kelurahan")
        return area

    def _ancestor(self, code: str, level: AreaLevel) -> Area:
        """The area of the given level that contains (or is) the area with this code."""
        area = self.require(code)
        if LEVELS.index(area.level) < LEVELS.index(level):
            raise UnknownArea(code, f"{level} or lower-level")
        while area.level != level:
            assert area.parent is not None  # only the provinsi has no parent
            area = self._by_code[area.parent]
        return area

    def kota_of(self, code: str) -> Area:
        """The kota (or kabupaten administrasi) of a kota, kecamatan or kelurahan code; raises UnknownArea."""
        return self._ancestor(code, "kota")

    def kecamatan_of(self, code: str) -> Area:
        """The kecamatan of a kecamatan or kelurahan code; raises UnknownArea."""
        return self._ancestor(code, "kecamatan")

    def lineage(self, kelurahan_code: str) -> AreaLineage:
        """Provinsi, kota, kecamatan and kelurahan of a kelurahan code; raises UnknownArea."""
        kel = self.kelurahan(kelurahan_code)
        return AreaLineage(
            provinsi=self._ancestor(kel.code, "provinsi"),
            kota=self._ancestor(kel.code, "kota"),
            kecamatan=self._ancestor(kel.code, "kecamatan"),
            kelurahan=kel,
        )

    def find(self, name: str, level: AreaLevel | None = None) -> list[Area]:
        """Areas whose name or official name equals the given name (case- and space-insensitive)."""
        wanted = " ".join(name.split()).casefold()
        return [
            a
            for a in self
            if (level is None or a.level == level)
            and wanted in {a.name.casefold(), (a.official_name or a.name).casefold()}
        ]

    def tree(self) -> AreaNode:
        """The whole hierarchy as nested nodes, rooted at the provinsi."""

        def node(area: Area) -> AreaNode:
            return AreaNode(
                code=area.code,
                name=area.name,
                level=area.level,
                children=[node(c) for c in self._children[area.code]],
            )

        return node(self._root)


def _load(text: str) -> AreaDirectory:
    """Build a directory from the JSON text of a data file."""
    doc = json.loads(text)
    return AreaDirectory(
        (Area.model_validate(item) for item in doc["areas"]),
        version=str(doc["version"]),
        source={str(k): str(v) for k, v in doc.get("source", {}).items()},
    )


@lru_cache(maxsize=1)
def areas() -> AreaDirectory:
    """The directory of DKI Jakarta areas, read from the packaged data file once."""
    directory = _load(files(__name__).joinpath(DATA_FILE).read_text(encoding="utf-8"))
    if directory.version != DATA_VERSION:
        raise RuntimeError(f"{DATA_FILE} has version {directory.version!r}, expected {DATA_VERSION!r}")
    if directory.province.code != PROVINCE_CODE:
        raise RuntimeError(
            f"{DATA_FILE} is rooted at {directory.province.code!r}, expected {PROVINCE_CODE!r}"
        )
    return directory
