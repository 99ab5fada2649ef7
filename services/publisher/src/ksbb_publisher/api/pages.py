"""Server-rendered public dashboard (Bahasa Indonesia first, English with ?lang=en)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from ksbb_contracts.areas import areas
from ksbb_contracts.vocab import RecipientKind

from ksbb_publisher.api.caching import cached
from ksbb_publisher.api.deps import ClockDep, QueriesDep, SettingsDep
from ksbb_publisher.domain.areas import is_area_of_level
from ksbb_publisher.domain.feed import VERBS
from ksbb_publisher.domain.opendata import ATTRIBUTION

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
#: Western Indonesian Time: Jakarta's clock, UTC+7 all year (no daylight saving since 1964).
WIB = timezone(timedelta(hours=7), "WIB")


def on_jakarta_clock(value: datetime) -> datetime:
    """A point in time on Jakarta's clock; naive values are UTC, as the read models store them."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(WIB)


def wib_time(value: datetime) -> str:
    """Day and time as people in Jakarta read them: 05-01-2026 15:00 WIB."""
    return on_jakarta_clock(value).strftime("%d-%m-%Y %H:%M WIB")


def iso_instant(value: datetime) -> str:
    """ISO 8601 with its offset (machine-readable `datetime` attribute)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


ENV.filters["wib"] = wib_time
ENV.filters["iso"] = iso_instant

ITEM_LABELS: dict[str, dict[str, str]] = {
    "id": {
        "sembako": "paket sembako", "ready_meals": "porsi makanan siap saji", "eid_package": "paket Lebaran",
        "masks": "masker", "hand_sanitizer": "hand sanitizer", "baby_milk": "susu bayi",
        "hygiene_kit": "paket kebersihan", "medicine": "paket obat", "other": "bantuan lain",
    },
    "en": {
        "sembako": "staple-food packages", "ready_meals": "ready meals", "eid_package": "Eid packages",
        "masks": "masks", "hand_sanitizer": "hand sanitizer", "baby_milk": "baby milk",
        "hygiene_kit": "hygiene kits", "medicine": "medicine packages", "other": "other aid",
    },
}

TEXT: dict[str, dict[str, str]] = {
    "id": {
        "title": "KSBB — Kolaborasi Sosial Berskala Besar",
        "skip": "Langsung ke isi",
        "intro": (
            "Semua informasi program terbuka untuk publik: siapa membutuhkan apa, "
            "dan bantuan yang sudah tersalurkan."
        ),
        "totals": "Ringkasan",
        "recipients": "Penerima",
        "households_targeted": "KK sasaran",
        "households_reached": "KK terjangkau",
        "packages": "Paket tersalurkan",
        "donors": "Kolaborator",
        "by_kota": "Per kota",
        "by_kecamatan": "Per kecamatan",
        "coverage": "Cakupan",
        "coverage_legend": (
            "Batang hijau: KK terjangkau dibanding KK sasaran di wilayah itu (100% = semua KK sasaran sudah "
            "menerima bantuan). Wilayah dengan cakupan terendah tampil paling atas."
        ),
        "coverage_value": "{coverage} KK terjangkau · {reached}/{targeted} KK · {packages} paket tersalurkan",
        "no_households": "tanpa KK sasaran",
        "sort_by": "Urutkan",
        "sort_coverage": "cakupan terendah dulu",
        "sort_name": "nama",
        "sort_targeted": "KK sasaran terbanyak",
        "sort_packages": "paket terbanyak",
        "portal": "Berikan bantuan / masuk",
        "filters": "Saring penerima",
        "kota": "Kota",
        "kecamatan": "Kecamatan",
        "kind": "Jenis penerima",
        "all": "Semua",
        "open_only": "Hanya yang masih punya kebutuhan terbuka",
        "apply": "Terapkan",
        "recipients_open": "Penerima dan kebutuhannya",
        "none": "Belum ada data.",
        "requested": "diminta",
        "pledged": "dijanjikan",
        "delivered": "tersalurkan",
        "feed": "Aktivitas terbaru",
        "live": "Diperbarui langsung",
        "open_data": "Data terbuka",
        "api_docs": "Dokumentasi API",
        "snapshots": "Arsip harian (dengan checksum)",
        "gaps": "Wilayah tanpa penyaluran dalam {days} hari terakhir",
        "language": "English",
        "for": "untuk",
        "households_short": "KK",
        "rw": "RW",
        "progress": "Kemajuan",
        "needs": "Kebutuhan",
        "no_js": "Halaman ini berfungsi tanpa JavaScript; pembaruan langsung memerlukan JavaScript.",
        "attribution": "Kode dan nama wilayah",
    },
    "en": {
        "title": "KSBB — Large-Scale Social Collaboration",
        "skip": "Skip to content",
        "intro": "All programme information is public: who needs what, and the aid already delivered.",
        "totals": "Summary",
        "recipients": "Recipients",
        "households_targeted": "Households targeted",
        "households_reached": "Households reached",
        "packages": "Packages delivered",
        "donors": "Collaborators",
        "by_kota": "By city",
        "by_kecamatan": "By district",
        "coverage": "Coverage",
        "coverage_legend": (
            "Green bar: households reached relative to the households targeted in that area (100% = every "
            "targeted household has received aid). Areas with the lowest coverage come first."
        ),
        "coverage_value": "{coverage} of households reached · {reached}/{targeted} households · {packages} packages "
        "delivered",
        "no_households": "no households targeted",
        "sort_by": "Sort",
        "sort_coverage": "lowest coverage first",
        "sort_name": "name",
        "sort_targeted": "most households targeted",
        "sort_packages": "most packages",
        "portal": "Give aid / sign in",
        "filters": "Filter recipients",
        "kota": "City (kota)",
        "kecamatan": "District (kecamatan)",
        "kind": "Recipient kind",
        "all": "All",
        "open_only": "Only recipients with open needs",
        "apply": "Apply",
        "recipients_open": "Recipients and their needs",
        "none": "No data yet.",
        "requested": "requested",
        "pledged": "pledged",
        "delivered": "delivered",
        "feed": "Latest activity",
        "live": "Live updates",
        "open_data": "Open data",
        "api_docs": "API documentation",
        "snapshots": "Daily archive (with checksums)",
        "gaps": "Areas without a delivery in the last {days} days",
        "language": "Bahasa Indonesia",
        "for": "for",
        "households_short": "households",
        "rw": "RW",
        "progress": "Progress",
        "needs": "Needs",
        "no_js": "This page works without JavaScript; live updates need JavaScript.",
        "attribution": "Area codes and names",
    },
}

KIND_LABELS = {
    "id": {
        "rw_rentan": "RW rentan",
        "panti_asuhan": "Panti asuhan",
        "panti_lansia": "Panti lansia",
        "panti_disabilitas": "Panti disabilitas",
        "pesantren": "Pesantren",
        "lainnya": "Lainnya",
    },
    "en": {
        "rw_rentan": "Vulnerable RW",
        "panti_asuhan": "Orphanage",
        "panti_lansia": "Elderly home",
        "panti_disabilitas": "Disability home",
        "pesantren": "Pesantren",
        "lainnya": "Other",
    },
}


def _lang(value: str | None) -> str:
    return "en" if value == "en" else "id"


#: Orders of the area lists; the first (coverage gaps first) is the default.
SORTS = ("coverage", "name", "targeted", "packages")


def coverage_rows(rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    """Area rows with their coverage (households reached ÷ households targeted, in %, None without targeted
    households), in the asked order; by default the coverage gaps first (lowest coverage, then the most
    households targeted), areas without targeted households last."""
    measured = []
    for row in rows:
        targeted, reached = row.get("households_targeted") or 0, row.get("households_reached") or 0
        coverage = min(100, round(100 * reached / targeted)) if targeted > 0 else None
        measured.append({**row, "coverage": coverage})

    def name(row: dict[str, Any]) -> str:
        return str(row.get("name") or row["code"]).lower()

    orders: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = {
        "coverage": lambda r: (r["coverage"] is None, r["coverage"] or 0, -r["households_targeted"], name(r)),
        "name": lambda r: (name(r),),
        "targeted": lambda r: (-r["households_targeted"], name(r)),
        "packages": lambda r: (-r["packages_delivered"], name(r)),
    }
    return sorted(measured, key=orders[sort if sort in orders else SORTS[0]])


def sort_links(request: Request) -> dict[str, str]:
    """This page's address in each order (other query parameters kept)."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "sort"]
    return {key: "/?" + urlencode([*kept, ("sort", key)]) for key in SORTS}


def render_snapshots(request: Request, listing: dict[str, Any]) -> str:
    """The snapshot listing page."""
    lang = _lang(request.query_params.get("lang"))
    return ENV.get_template("snapshots.html").render(t=TEXT[lang], lang=lang, listing=listing)


router = APIRouter(tags=["web"])


def mount_static(app: FastAPI) -> None:
    """Serve the pages' style sheet and script under /static."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


@router.get("/", response_class=HTMLResponse, summary="Public dashboard (HTML)")
async def dashboard(
    request: Request,
    queries: QueriesDep,
    settings: SettingsDep,
    clock: ClockDep,
    lang: Annotated[str | None, Query(pattern="^(id|en)$")] = None,
    kota: str | None = None,
    kecamatan: str | None = None,
    kind: str | None = None,
    open: str | None = None,
    sort: str | None = None,
) -> Response:
    language = _lang(lang)
    directory = areas()
    # Unknown filter values are ignored rather than refused: the page is reached by links and forms.
    kota = kota if is_area_of_level(kota, "kota") else None
    kecamatan = kecamatan if is_area_of_level(kecamatan, "kecamatan") else None
    kind = kind if kind in {k.value for k in RecipientKind} else None
    only_open = open in ("1", "true", "on")
    stats = await queries.stats()
    recipients, _ = await queries.recipients(
        kota=kota, kecamatan=kecamatan, kind=kind, has_open_needs=True if only_open else None, limit=30
    )
    needs_of: dict[str, list[dict[str, Any]]] = {}
    for recipient in recipients:
        if recipient["open_needs"]:
            items, _ = await queries.needs(recipient_id=recipient["recipient_id"], status="open", limit=10)
            needs_of[recipient["recipient_id"]] = items
    newest_seq = await queries.latest_feed_seq()  # read first: the stream replays anything newer
    feed, _ = await queries.feed(limit=20)
    gaps = await queries.coverage_gaps(clock.now(), settings.coverage_gap_days)
    kecamatan_rows = [r for r in stats["by_kecamatan"] if not kota or r["code"].startswith(kota + ".")]
    html = ENV.get_template("dashboard.html").render(
        t=TEXT[language],
        lang=language,
        kinds=KIND_LABELS[language],
        verbs=VERBS,
        items=ITEM_LABELS[language],
        stats=stats,
        kecamatan_rows=coverage_rows(kecamatan_rows, sort),
        kota_rows=coverage_rows(stats["by_kota"], sort),
        sort=sort if sort in SORTS else SORTS[0],
        sort_links=sort_links(request),
        recipients=recipients,
        needs_of=needs_of,
        feed=feed,
        gaps=gaps["areas"]["kecamatan"][:10],
        gap_days=settings.coverage_gap_days,
        kotas=directory.level("kota"),
        kecamatans=[a for a in directory.level("kecamatan") if not kota or a.parent == kota],
        selected={"kota": kota, "kecamatan": kecamatan, "kind": kind, "open": only_open},
        newest=newest_seq,
        attribution=ATTRIBUTION,
    )
    return cached(request, html.encode(), "text/html; charset=utf-8", settings.cache_max_age_seconds)
