"""Pages for anyone: the start page, open needs with filters, one need, a recipient's page, how to give."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from ksbb_contracts.vocab import Item, Priority, RecipientKind

from ksbb_portal.api import ApiProblem
from ksbb_portal.web.common import (
    area_of_level,
    catalogue,
    kecamatans,
    kelurahans,
    kotas,
    progress_of,
)
from ksbb_portal.web.context import PageDep

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20


@router.get("/")
async def home(ctx: PageDep) -> HTMLResponse:
    """What the programme is, how far it got, and where to start."""
    stats: dict[str, Any] = {}
    with contextlib.suppress(ApiProblem):
        stats = await ctx.api.get_public("/v1/public/stats")
    return await ctx.render("home.html", title=ctx._("home_title"), totals=stats.get("totals") or {})


@router.get("/how-to-give")
async def how_to_give(ctx: PageDep) -> HTMLResponse:
    """The steps of giving and the rules for aid, with the reference packages' prices."""
    prices = {entry["item"]: entry.get("reference_price_idr") for entry in await catalogue(ctx)}
    return await ctx.render("how.html", title=ctx._("how_title"), prices=prices)


@router.get("/needs")
async def needs(
    ctx: PageDep, kota: str | None = None, kecamatan: str | None = None, kelurahan: str | None = None,
    kind: str | None = None, item: str | None = None, priority: str | None = None, cursor: str | None = None,
) -> HTMLResponse:
    """Open needs, filtered by area, recipient kind, item and urgency, with their progress."""
    # Unknown filter values are dropped rather than refused: they come from links and forms.
    selected = {
        "kota": area_of_level(kota, "kota"), "kecamatan": area_of_level(kecamatan, "kecamatan"),
        "kelurahan": area_of_level(kelurahan, "kelurahan"),
        "kind": kind if kind in {k.value for k in RecipientKind} else None,
        "item": item if item in {i.value for i in Item} else None,
        "priority": priority if priority in {p.value for p in Priority} else None,
    }
    if selected["kecamatan"] and selected["kota"] and not selected["kecamatan"].startswith(selected["kota"] + "."):
        selected["kecamatan"] = None
    if selected["kelurahan"] and (not selected["kecamatan"]
                                  or not selected["kelurahan"].startswith(selected["kecamatan"] + ".")):
        selected["kelurahan"] = None
    found, next_cursor = await open_needs(ctx, selected, cursor)
    items = [{**need, "bar": progress_of(need)} for need in found]
    return await ctx.render(
        "needs.html", title=ctx._("needs_title"), needs=items, next_cursor=next_cursor,
        selected=selected, kotas=kotas(), kecamatans=kecamatans(selected["kota"]),
        kelurahans=kelurahans(selected["kecamatan"]),
    )


async def open_needs(
    ctx: PageDep, selected: dict[str, str | None], cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Open needs matching the filters (area, recipient kind, item and urgency, all applied by the public needs
    API), and the cursor of the next page."""
    page = await ctx.api.get_public("/v1/public/needs", status="open", limit=PAGE_SIZE, cursor=cursor, **selected)
    return list(page["items"]), page.get("next_cursor")


@router.get("/needs/{need_id}")
async def need(ctx: PageDep, need_id: str) -> HTMLResponse:
    """One need: what, for whom, how far, and the way to pledge."""
    found, ledger = await asyncio.gather(
        ctx.api.get_public(f"/v1/public/needs/{need_id}"), _ledger(ctx, need_id),
    )
    bar = progress_of(ledger or found)
    return await ctx.render("need.html", title=ctx._("see_need"), need=found, bar=bar)


async def _ledger(ctx: PageDep, need_id: str) -> dict[str, Any] | None:
    """The pledges service's live quantities of a need (None when it does not know the need yet)."""
    try:
        ledger: dict[str, Any] = await ctx.api.get_public(f"/v1/needs/{need_id}/ledger")
    except ApiProblem as exc:
        if exc.status == 404:
            return None
        raise
    return ledger


@router.get("/recipients/{recipient_id}")
async def recipient(ctx: PageDep, recipient_id: str) -> HTMLResponse:
    """A recipient's public page: who, where, how many people, and its needs."""
    found = await ctx.api.get_public(f"/v1/public/recipients/{recipient_id}")
    needs = [{**n, "bar": progress_of(n)} for n in found.get("needs", [])]
    return await ctx.render("recipient.html", title=found["name"], recipient=found, needs=needs)
