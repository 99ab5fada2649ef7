"""Tests of the packaged DKI Jakarta area codes and their loader."""

from __future__ import annotations

import json
import math
from importlib.resources import files

import pytest
from ksbb_contracts.areas import (
    DATA_FILE,
    DATA_VERSION,
    JAKARTA_BBOX,
    LEVELS,
    PROVINCE_CODE,
    Area,
    AreaDirectory,
    AreaNode,
    UnknownArea,
    areas,
    in_jakarta,
)
from pydantic import ValidationError

pytestmark = pytest.mark.unit


def _raw() -> dict:
    return json.loads(files("ksbb_contracts.areas").joinpath(DATA_FILE).read_text(encoding="utf-8"))


def test_data_file_version_and_source() -> None:
    raw = _raw()
    assert raw["version"] == DATA_VERSION == areas().version
    assert raw["source"]["package"] == "idn-area-data"
    assert raw["source"]["data_license"] == "ODbL-1.0"
    assert "Open Database License" in raw["source"]["attribution"]


def test_counts_per_level() -> None:
    directory = areas()
    raw_kelurahan = [a for a in _raw()["areas"] if a["level"] == "kelurahan"]
    assert len(directory.level("provinsi")) == 1
    assert len(directory.level("kota")) == 6
    assert len(directory.level("kecamatan")) == 44
    assert len(directory.level("kelurahan")) == len(raw_kelurahan) == 267
    assert 260 <= len(raw_kelurahan) <= 270
    assert len(directory) == 1 + 6 + 44 + 267


def test_province() -> None:
    province = areas().get(PROVINCE_CODE)
    assert province is not None
    assert province.level == "provinsi"
    assert province.parent is None
    assert "Jakarta" in province.name
    assert areas().province == province


def test_kota_codes_match_kemendagri() -> None:
    kota = {a.code: a.name for a in areas().level("kota")}
    assert kota == {
        "31.01": "Kepulauan Seribu",
        "31.71": "Jakarta Pusat",
        "31.72": "Jakarta Utara",
        "31.73": "Jakarta Barat",
        "31.74": "Jakarta Selatan",
        "31.75": "Jakarta Timur",
    }
    assert areas().require("31.01").official_name == "Kabupaten Administrasi Kepulauan Seribu"
    assert areas().require("31.74").official_name == "Kota Administrasi Jakarta Selatan"


def test_codes_unique_and_prefixed_by_parent() -> None:
    codes = [a["code"] for a in _raw()["areas"]]
    assert len(codes) == len(set(codes))
    for area in areas():
        assert area.code == PROVINCE_CODE or area.code.startswith(PROVINCE_CODE + ".")
        if area.level == "provinsi":
            continue
        assert area.parent is not None
        assert area.code.startswith(area.parent + ".")
        parent = areas().get(area.parent)
        assert parent is not None
        assert LEVELS.index(parent.level) == LEVELS.index(area.level) - 1
        assert area in areas().children(parent.code)


def test_names_are_title_case() -> None:
    for area in areas():
        assert area.name == area.name.strip()
        assert not area.name.isupper()
        assert all(word[0].isupper() or word[0].isdigit() for word in area.name.split())


@pytest.mark.parametrize(
    ("name", "kecamatan", "kota"),
    [
        ("Gambir", "Gambir", "Jakarta Pusat"),
        ("Senayan", "Kebayoran Baru", "Jakarta Selatan"),
        ("Pluit", "Penjaringan", "Jakarta Utara"),
        ("Cengkareng Barat", "Cengkareng", "Jakarta Barat"),
        ("Kampung Melayu", "Jatinegara", "Jakarta Timur"),
        ("Pulau Tidung", "Kepulauan Seribu Selatan", "Kepulauan Seribu"),
    ],
)
def test_known_kelurahan(name: str, kecamatan: str, kota: str) -> None:
    (kel,) = areas().find(name, level="kelurahan")
    lineage = areas().lineage(kel.code)
    assert lineage.kelurahan == kel
    assert lineage.kecamatan.name == kecamatan
    assert lineage.kota.name == kota
    assert lineage.provinsi.code == PROVINCE_CODE
    assert areas().kecamatan_of(kel.code) == lineage.kecamatan
    assert areas().kota_of(kel.code) == lineage.kota
    assert areas().is_kelurahan(kel.code)


def test_known_codes() -> None:
    directory = areas()
    assert directory.kelurahan("31.71.01.1001").name == "Gambir"
    assert directory.require("31.74.07").name == "Kebayoran Baru"
    assert directory.kota_of("31.74.07").code == "31.74"
    assert directory.kota_of("31.74").code == "31.74"
    assert directory.kecamatan_of("31.74.07.1006").name == "Kebayoran Baru"
    assert [a.name for a in directory.children("31.01")] == [
        "Kepulauan Seribu Utara",
        "Kepulauan Seribu Selatan",
    ]
    assert directory.children("31.71.01.1001") == []


@pytest.mark.parametrize("code", ["", "31.71.01.9999", "32.01", "31.76", "3171011001", "31.71.01.1001 "])
def test_unknown_codes(code: str) -> None:
    directory = areas()
    assert directory.get(code) is None
    assert code not in directory
    assert not directory.is_kelurahan(code)
    with pytest.raises(UnknownArea):
        directory.kelurahan(code)
    with pytest.raises(UnknownArea):
        directory.lineage(code)
    with pytest.raises(UnknownArea):
        directory.children(code)
    with pytest.raises(UnknownArea):
        directory.kota_of(code)


def test_wrong_level_raises() -> None:
    directory = areas()
    with pytest.raises(UnknownArea):
        directory.kelurahan("31.71.01")
    with pytest.raises(UnknownArea):
        directory.lineage("31.71")
    with pytest.raises(UnknownArea):
        directory.kecamatan_of("31.71")
    with pytest.raises(UnknownArea):
        directory.kota_of(PROVINCE_CODE)
    assert not directory.is_kelurahan("31.71.01")
    with pytest.raises(ValueError):
        directory.level("desa")  # type: ignore[arg-type]


def test_tree_covers_everything() -> None:
    root = areas().tree()
    assert isinstance(root, AreaNode)
    assert root.code == PROVINCE_CODE
    assert len(root.children) == 6
    seen: list[str] = []

    def walk(node: AreaNode) -> None:
        seen.append(node.code)
        for child in node.children:
            assert LEVELS.index(child.level) == LEVELS.index(node.level) + 1
            walk(child)

    walk(root)
    assert sorted(seen) == sorted(a.code for a in areas())
    assert json.loads(root.model_dump_json())["children"][0]["code"] == "31.01"


def test_loader_is_cached() -> None:
    assert areas() is areas()


def test_area_model_validates_codes() -> None:
    with pytest.raises(ValidationError):
        Area(code="31.71.01.1001", name="X", level="kelurahan", parent="31.71.02")
    with pytest.raises(ValidationError):
        Area(code="31.71.01", name="X", level="kelurahan", parent="31.71")
    with pytest.raises(ValidationError):
        Area(code="31", name="X", level="provinsi", parent="30")


def test_directory_rejects_broken_hierarchy() -> None:
    province = Area(code="31", name="P", level="provinsi", parent=None)
    orphan = Area(code="31.71.01", name="K", level="kecamatan", parent="31.71")
    with pytest.raises(ValueError):
        AreaDirectory([province, orphan], version="test")
    kota = Area(code="31.71", name="K", level="kota", parent="31")
    skipping = Area(code="31.71.01.1001", name="L", level="kelurahan", parent="31.71")
    with pytest.raises(ValueError):
        AreaDirectory([province, kota, skipping], version="test")
    assert len(AreaDirectory([province, kota], version="test")) == 2
    with pytest.raises(ValueError):
        AreaDirectory([province, province], version="test")


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (-6.1754, 106.8272, True),  # Monas, Gambir
        (-6.2186, 106.8022, True),  # Gelora Bung Karno, Senayan
        (-5.2047, 106.4608, True),  # Pulau Sabira, northernmost of Kepulauan Seribu
        (-5.4789, 106.3927, True),  # Pulau Pabelokan, westernmost of Kepulauan Seribu
        (-6.9147, 107.6098, False),  # Bandung
        (-6.5950, 106.8166, False),  # Bogor
        (1.3521, 103.8198, False),  # Singapore
        (math.nan, 106.8, False),
    ],
)
def test_bbox(lat: float, lon: float, inside: bool) -> None:
    assert in_jakarta(lat, lon) is inside
    assert JAKARTA_BBOX.min_lat < JAKARTA_BBOX.max_lat
    assert JAKARTA_BBOX.min_lon < JAKARTA_BBOX.max_lon
