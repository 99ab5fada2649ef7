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


INVITE_FIELDS = {"email", "first_name", "last_name"}


async def _staff_page(ctx: Page, organisation_id: str | None, *, invite: dict[str, Any] | None = None,
                      notice: str | None = None, status: int = 200) -> HTMLResponse:
    organisations = (await ctx.api.get("/v1/organisations", status="active", limit=100))["items"]
    chosen = next((o for o in organisations if o["organisation_id"] == organisation_id), None)
    members = []
    if chosen is not None:
        members = (await ctx.api.get(f"/v1/organisations/{organisation_id}/members", limit=100))["items"]
    return await ctx.render("staff.html", status=status, title=ctx._("invite_facilitators"), members=members,
                            organisations=organisations, chosen=chosen, notice=notice,
                            invite=invite or {"values": {"form_key": new_form_key()}, "errors": {}})


@router.get("/staff")
async def staff(ctx: AdminPage, org: str | None = None) -> HTMLResponse:
    """Choose an organisation, see its staff, invite a new staff member (e-mailed a set-password link)."""
    return await _staff_page(ctx, org)


@router.post("/organisations/{organisation_id}/members")
async def invite_staff(ctx: AdminPage, organisation_id: str) -> Response:
    """Invite a facilitator staff member of an organisation."""
    form = await ctx.form()
    body = {"email": text(form, "email"), "first_name": text(form, "first_name"),
            "last_name": text(form, "last_name")}
    try:
        await ctx.api.call("POST", f"/v1/organisations/{organisation_id}/members", json=body,
                           headers={"Idempotency-Key": (text(form, "form_key") or new_form_key())[:100]})
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        found = problems_of(problem, ctx.lang, INVITE_FIELDS)
        return await _staff_page(ctx, organisation_id, status=problem.status,
                                 notice=found.general[0] if found.general else None,
                                 invite={"values": values_of(form), "errors": found.fields})
    await ctx.flash("success", "invitation_sent", email=body["email"] or "")
    return ctx.redirect("/admin/staff", org=organisation_id)


@router.post("/organisations/{organisation_id}/members/{account_id}/revoke")
async def revoke_staff(ctx: AdminPage, organisation_id: str, account_id: str) -> Response:
    """Revoke a staff member: the identity provider disables the account."""
    await ctx.form()
    try:
        await ctx.api.call("DELETE", f"/v1/organisations/{organisation_id}/members/{account_id}")
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        return await _staff_page(ctx, organisation_id, status=problem.status,
                                 notice=problems_of(problem, ctx.lang, set()).general[0])
    await ctx.flash("success", "account_revoked")
    return ctx.redirect("/admin/staff", org=organisation_id)


# Declared last: its {action} segment would otherwise catch /members.
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
