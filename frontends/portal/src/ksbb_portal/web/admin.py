"""Administrator pages: a programme overview, facilitator organisations (create, suspend, reinstate), staff."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ksbb_portal.api import ApiProblem
from ksbb_portal.formatting import percent
from ksbb_portal.web.common import kotas, new_form_key
from ksbb_portal.web.context import AdminPage, Page
from ksbb_portal.web.forms import Problems, many, problems_of, text, values_of

router = APIRouter(prefix="/admin", include_in_schema=False)
ORGANISATION_FIELDS = {"name", "kind", "contact.name", "contact.email", "contact.phone", "area_codes"}


@router.get("")
async def overview(ctx: AdminPage) -> HTMLResponse:
    """Totals, coverage by kota (gaps first) and organisations by status."""
    stats, organisations = await asyncio.gather(
        ctx.api.get_public("/v1/public/stats"), ctx.api.get("/v1/organisations", limit=100),
    )
    rows = [{**row, "coverage": percent(row["households_reached"], row["households_targeted"])}
            for row in stats.get("by_kota", [])]
    rows.sort(key=lambda r: (r["coverage"], -r["households_targeted"]))
    counts: dict[str, int] = {}
    for org in organisations["items"]:
        counts[org["status"]] = counts.get(org["status"], 0) + 1
    return await ctx.render("admin.html", title=ctx._("admin_title"), totals=stats.get("totals") or {}, rows=rows,
                            counts=counts)


@router.get("/organisations")
async def organisations(ctx: AdminPage, status: str | None = None) -> HTMLResponse:
    """Every facilitator organisation."""
    page = await ctx.api.get("/v1/organisations", status=status, limit=100)
    return await ctx.render("organisations.html", title=ctx._("organisations_title"), organisations=page["items"],
                            status_filter=status, notice=None)


async def _organisation_form(ctx: Page, *, values: dict[str, Any], problems: Problems | None = None,
                             status: int = 200) -> HTMLResponse:
    merged = {"name": "", "kind": "ngo", "contact.name": "", "contact.email": "", "contact.phone": "",
              "area_codes": [], "form_key": new_form_key(), **values}
    if isinstance(merged["area_codes"], str):
        merged["area_codes"] = [merged["area_codes"]]
    return await ctx.render("organisation_form.html", status=status, title=ctx._("new_organisation"), values=merged,
                            problems=problems or Problems(), errors=problems.fields if problems else {},
                            kotas=kotas())


@router.get("/organisations/new")
async def new_organisation(ctx: AdminPage) -> HTMLResponse:
    """The form of a new organisation."""
    return await _organisation_form(ctx, values={})


@router.post("/organisations/new")
async def create_organisation(ctx: AdminPage) -> Response:
    """Register a facilitator organisation."""
    form = await ctx.form()
    body = {"name": text(form, "name"), "kind": text(form, "kind"), "area_codes": many(form, "area_codes"),
            "contact": {"name": text(form, "contact.name"), "email": text(form, "contact.email"),
                        "phone": text(form, "contact.phone")}}
    try:
        await ctx.api.call("POST", "/v1/organisations", json=body,
                           headers={"Idempotency-Key": (text(form, "form_key") or new_form_key())[:100]})
    except ApiProblem as problem:
        if problem.status in (401, 403):
            raise
        return await _organisation_form(ctx, values=values_of(form), status=problem.status,
                                        problems=problems_of(problem, ctx.lang, ORGANISATION_FIELDS))
    await ctx.flash("success", "organisation_created")
    return ctx.redirect("/admin/organisations")


@router.post("/organisations/{organisation_id}/{action}")
async def change_organisation(ctx: AdminPage, organisation_id: str, action: str) -> Response:
    """Suspend or reinstate an organisation (a reason is required)."""
    if action not in ("suspend", "reinstate"):
        raise ApiProblem(404, "not_found", "no such action")
    form = await ctx.form()
    try:
        answer = await ctx.api.call("POST", f"/v1/organisations/{organisation_id}/{action}",
                                    json={"reason": text(form, "reason")})
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        page = await ctx.api.get("/v1/organisations", limit=100)
        return await ctx.render("organisations.html", status=problem.status, title=ctx._("organisations_title"),
                                organisations=page["items"], status_filter=None,
                                notice=problems_of(problem, ctx.lang, set()).general[0])
    await ctx.flash("success", "organisation_changed",
                    status=ctx._label("organisation_status", answer.data["status"]))
    return ctx.redirect("/admin/organisations")


@router.get("/staff")
async def staff(ctx: AdminPage) -> HTMLResponse:
    """Inviting facilitator staff needs the registry's invitation API, which does not exist yet."""
    return await ctx.render("staff.html", title=ctx._("invite_facilitators"))
