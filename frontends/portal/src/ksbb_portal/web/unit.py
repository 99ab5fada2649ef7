"""A recipient unit's needs and incoming pledges: used by the unit's own account (/unit) and by its
organisation's facilitators on its behalf (/org/recipients/{id}); the registry and pledges services decide
who may do what, these pages only show it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from ksbb_contracts.vocab import Priority, Recurrence

from ksbb_portal import formatting
from ksbb_portal.api import ApiProblem
from ksbb_portal.web.common import catalogue, new_form_key, progress_of
from ksbb_portal.web.context import FacilitatorPage, Page, RecipientPage, Refused
from ksbb_portal.web.forms import Problems, number_or_text, problems_of, text, values_of

router = APIRouter(include_in_schema=False)
NEED_FIELDS = {"item", "item_description", "quantity", "unit", "priority", "needed_by", "recurrence", "notes"}
EDIT_FIELDS = ("quantity", "unit", "priority", "needed_by", "item_description", "notes")
PLEDGE_ACTIONS = {"confirm", "reject", "receive", "dispatch"}


def _own(ctx: Page) -> tuple[str, str]:
    """(recipient id, base path) of a recipient unit's own pages."""
    assert ctx.session is not None
    recipient_id = ctx.session.person.recipient_id
    if not recipient_id:
        raise Refused("account_incomplete")
    return recipient_id, "/unit"


def _on_behalf(recipient_id: str) -> tuple[str, str]:
    return recipient_id, f"/org/recipients/{recipient_id}"


# ------------------------------------------------------------------------------------------ needs


async def needs_page(ctx: Page, recipient_id: str, base: str, *, notice: str | None = None,
                     status: int = 200) -> HTMLResponse:
    """The unit's needs (every status) with their progress and what can be changed."""
    recipient = await ctx.api.get(f"/v1/recipients/{recipient_id}")
    page = await ctx.api.get("/v1/needs", recipient_id=recipient_id, limit=100)
    needs = [{**n, "bar": progress_of(n)} for n in page["items"]]
    return await ctx.render("unit_needs.html", status=status, title=ctx._("unit_needs_title", name=recipient["name"]),
                            recipient=recipient, needs=needs, base=base, notice=notice)


async def need_form(ctx: Page, recipient_id: str, base: str, *, values: dict[str, Any],
                    problems: Problems | None = None, status: int = 200) -> HTMLResponse:
    """The new-need form: catalogue items, the registry's suggestions, and the fields of a need."""
    recipient = await ctx.api.get(f"/v1/recipients/{recipient_id}")
    suggestions: list[dict[str, Any]] = []
    try:
        suggestions = await ctx.api.get(f"/v1/recipients/{recipient_id}/need-suggestions")
    except ApiProblem as problem:
        if problem.status >= 500:
            raise
    items = await catalogue(ctx)
    defaults = {"item": "sembako", "quantity": "", "unit": "", "priority": Priority.MEDIUM.value,
                "recurrence": Recurrence.NONE.value, "item_description": "", "notes": "", "form_key": new_form_key(),
                "needed_by": (formatting.jakarta_today() + timedelta(days=14)).isoformat()}
    merged = {**defaults, **values}
    return await ctx.render("need_form.html", status=status, title=ctx._("new_need"), recipient=recipient, base=base,
                            catalogue=items, suggestions=suggestions, values=merged,
                            problems=problems or Problems(), errors=problems.fields if problems else {},
                            min_date=formatting.jakarta_today().isoformat())


async def post_need(ctx: Page, recipient_id: str, base: str) -> Response:
    """Post a need for the unit."""
    form = await ctx.form()
    body = {"item": text(form, "item"), "item_description": text(form, "item_description"),
            "quantity": number_or_text(form, "quantity"), "unit": text(form, "unit"),
            "priority": text(form, "priority") or "medium", "needed_by": text(form, "needed_by"),
            "recurrence": text(form, "recurrence") or "none", "notes": text(form, "notes")}
    key = (text(form, "form_key") or new_form_key())[:100]
    try:
        await ctx.api.call("POST", f"/v1/recipients/{recipient_id}/needs", json=body,
                           headers={"Idempotency-Key": key})
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        return await need_form(ctx, recipient_id, base, values=values_of(form), status=problem.status,
                               problems=problems_of(problem, ctx.lang, NEED_FIELDS))
    await ctx.flash("success", "need_posted")
    return ctx.redirect(f"{base}/needs")


async def edit_need_form(ctx: Page, recipient_id: str, base: str, need_id: str, *,
                         typed: dict[str, Any] | None = None, problems: Problems | None = None,
                         changed: bool = False, status: int = 200) -> HTMLResponse:
    """The edit form of an open need (with its ETag); after a 412 it shows the current values beside the typed."""
    answer = await ctx.api.call("GET", f"/v1/needs/{need_id}")
    need = answer.data
    current = {name: ("" if need.get(name) is None else str(need.get(name))) for name in EDIT_FIELDS}
    values = {**current, **(typed or {}), "etag": answer.etag or ""}
    return await ctx.render("need_edit.html", status=status, title=ctx._("edit_need"), need=need, base=base,
                            values=values, current=current if changed else {}, changed=changed,
                            problems=problems or Problems(), errors=problems.fields if problems else {},
                            recipient_id=recipient_id, min_date=formatting.jakarta_today().isoformat())


async def save_need(ctx: Page, recipient_id: str, base: str, need_id: str) -> Response:
    """Change a need with If-Match; a stale form (412) comes back with the current values and the typed ones."""
    form = await ctx.form()
    body = {"quantity": number_or_text(form, "quantity"), "unit": text(form, "unit"),
            "priority": text(form, "priority"), "needed_by": text(form, "needed_by"),
            "item_description": text(form, "item_description"), "notes": text(form, "notes")}
    body = {k: v for k, v in body.items() if v is not None or k in ("item_description", "notes")}
    headers = {"If-Match": text(form, "etag") or ""} if text(form, "etag") else None
    try:
        await ctx.api.call("PATCH", f"/v1/needs/{need_id}", json=body, headers=headers)
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        typed = {k: v for k, v in values_of(form).items() if k in EDIT_FIELDS}
        if problem.status == 412:
            return await edit_need_form(ctx, recipient_id, base, need_id, typed=typed, changed=True, status=412)
        return await edit_need_form(ctx, recipient_id, base, need_id, typed=typed, status=problem.status,
                                    problems=problems_of(problem, ctx.lang, set(EDIT_FIELDS)))
    await ctx.flash("success", "need_saved")
    return ctx.redirect(f"{base}/needs")


async def cancel_need(ctx: Page, recipient_id: str, base: str, need_id: str) -> Response:
    """Cancel an open need (a reason is required)."""
    form = await ctx.form()
    try:
        await ctx.api.call("POST", f"/v1/needs/{need_id}/cancel", json={"reason": text(form, "reason")})
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        return await needs_page(ctx, recipient_id, base, status=problem.status,
                                notice=problems_of(problem, ctx.lang, set()).general[0])
    await ctx.flash("success", "need_cancelled")
    return ctx.redirect(f"{base}/needs")


# ------------------------------------------------------------------------------------------ pledges


async def pledges_page(ctx: Page, recipient_id: str, base: str, *, notice: str | None = None,
                       errors: dict[str, dict[str, str]] | None = None, typed: dict[str, dict[str, Any]] | None = None,
                       status: int = 200) -> HTMLResponse:
    """Pledges to the unit with what can be done next: confirm or reject, and confirm receipt (partial allowed)."""
    recipient = await ctx.api.get(f"/v1/recipients/{recipient_id}")
    page = await ctx.api.get(f"/v1/recipients/{recipient_id}/pledges", limit=100)
    return await ctx.render("unit_pledges.html", status=status,
                            title=ctx._("incoming_title", name=recipient["name"]), recipient=recipient,
                            pledges=page["items"], base=base, notice=notice, pledge_errors=errors or {},
                            typed=typed or {})


async def act_on_pledge(ctx: Page, recipient_id: str, base: str, pledge_id: str, action: str) -> Response:
    """Confirm, reject, confirm receipt of, or (for a distribution partner) dispatch one pledge."""
    if action not in PLEDGE_ACTIONS:
        raise ApiProblem(404, "not_found", "no such action")
    form = await ctx.form()
    path, done = f"/v1/pledges/{pledge_id}/{action}", "pledge_confirmed"
    body: dict[str, Any] | None = None
    if action == "reject":
        body, done = {"reason": text(form, "reason")}, "pledge_rejected"
    elif action == "receive":
        path = f"/v1/pledges/{pledge_id}/deliver"
        body, done = {"received_quantity": number_or_text(form, "received_quantity"),
                      "proof_ref": text(form, "proof_ref")}, "receipt_recorded"
    elif action == "dispatch":
        done = "pledge_dispatched"
    try:
        answer = await ctx.api.call("POST", path, json=body)
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        if problem.status == 409:
            current = problem.details.get("status", "")
            return await pledges_page(ctx, recipient_id, base, status=409,
                                      notice=ctx._("conflict_state", status=ctx._label("pledge_status", current)))
        found = problems_of(problem, ctx.lang, {"received_quantity", "reason", "proof_ref"})
        return await pledges_page(ctx, recipient_id, base, status=problem.status, errors={pledge_id: found.fields},
                                  typed={pledge_id: values_of(form)},
                                  notice=found.general[0] if found.general else None)
    pledge = answer.data or {}
    await ctx.flash("success", done, quantity=formatting.number(pledge.get("delivered_quantity")),
                    unit=ctx._label("item", pledge.get("item")))
    return ctx.redirect(f"{base}/pledges")


# ------------------------------------------------------------------------------------------ routes: own unit


@router.get("/unit")
async def unit_home(ctx: RecipientPage) -> Response:
    """The unit's start page is its needs."""
    return ctx.redirect("/unit/needs")


@router.get("/unit/needs")
async def unit_needs(ctx: RecipientPage) -> HTMLResponse:
    """The unit's needs."""
    return await needs_page(ctx, *_own(ctx))


@router.get("/unit/needs/new")
async def unit_need_form(ctx: RecipientPage, item: str | None = None, quantity: str | None = None,
                         unit: str | None = None, priority: str | None = None,
                         recurrence: str | None = None) -> HTMLResponse:
    """Post a need from the catalogue or from a suggestion (whose values arrive in the query)."""
    chosen = {k: v for k, v in {"item": item, "quantity": quantity, "unit": unit, "priority": priority,
                                "recurrence": recurrence}.items() if v}
    return await need_form(ctx, *_own(ctx), values=chosen)


@router.post("/unit/needs/new")
async def unit_post_need(ctx: RecipientPage) -> Response:
    """Send the new need."""
    return await post_need(ctx, *_own(ctx))


@router.get("/unit/needs/{need_id}/edit")
async def unit_edit_need(ctx: RecipientPage, need_id: str) -> HTMLResponse:
    """Edit one need."""
    return await edit_need_form(ctx, *_own(ctx), need_id)


@router.post("/unit/needs/{need_id}/edit")
async def unit_save_need(ctx: RecipientPage, need_id: str) -> Response:
    """Save one need."""
    return await save_need(ctx, *_own(ctx), need_id)


@router.post("/unit/needs/{need_id}/cancel")
async def unit_cancel_need(ctx: RecipientPage, need_id: str) -> Response:
    """Cancel one need."""
    return await cancel_need(ctx, *_own(ctx), need_id)


@router.get("/unit/pledges")
async def unit_pledges(ctx: RecipientPage) -> HTMLResponse:
    """Pledges to the unit."""
    return await pledges_page(ctx, *_own(ctx))


@router.post("/unit/pledges/{pledge_id}/{action}")
async def unit_pledge_action(ctx: RecipientPage, pledge_id: str, action: str) -> Response:
    """Act on one pledge."""
    return await act_on_pledge(ctx, *_own(ctx), pledge_id, action)


# ------------------------------------------------------------------------------------------ routes: on behalf


@router.get("/org/recipients/{recipient_id}/needs")
async def org_needs(ctx: FacilitatorPage, recipient_id: str) -> HTMLResponse:
    """A recipient's needs, for its facilitator."""
    return await needs_page(ctx, *_on_behalf(recipient_id))


@router.get("/org/recipients/{recipient_id}/needs/new")
async def org_need_form(ctx: FacilitatorPage, recipient_id: str, item: str | None = None,
                        quantity: str | None = None, unit: str | None = None, priority: str | None = None,
                        recurrence: str | None = None) -> HTMLResponse:
    """Post a need on a recipient's behalf."""
    chosen = {k: v for k, v in {"item": item, "quantity": quantity, "unit": unit, "priority": priority,
                                "recurrence": recurrence}.items() if v}
    return await need_form(ctx, *_on_behalf(recipient_id), values=chosen)


@router.post("/org/recipients/{recipient_id}/needs/new")
async def org_post_need(ctx: FacilitatorPage, recipient_id: str) -> Response:
    """Send a need on a recipient's behalf."""
    return await post_need(ctx, *_on_behalf(recipient_id))


@router.get("/org/recipients/{recipient_id}/needs/{need_id}/edit")
async def org_edit_need(ctx: FacilitatorPage, recipient_id: str, need_id: str) -> HTMLResponse:
    """Edit a recipient's need."""
    return await edit_need_form(ctx, *_on_behalf(recipient_id), need_id)


@router.post("/org/recipients/{recipient_id}/needs/{need_id}/edit")
async def org_save_need(ctx: FacilitatorPage, recipient_id: str, need_id: str) -> Response:
    """Save a recipient's need."""
    return await save_need(ctx, *_on_behalf(recipient_id), need_id)


@router.post("/org/recipients/{recipient_id}/needs/{need_id}/cancel")
async def org_cancel_need(ctx: FacilitatorPage, recipient_id: str, need_id: str) -> Response:
    """Cancel a recipient's need."""
    return await cancel_need(ctx, *_on_behalf(recipient_id), need_id)


@router.get("/org/recipients/{recipient_id}/pledges")
async def org_pledges(ctx: FacilitatorPage, recipient_id: str) -> HTMLResponse:
    """Pledges to a recipient, for its facilitator."""
    return await pledges_page(ctx, *_on_behalf(recipient_id))


@router.post("/org/recipients/{recipient_id}/pledges/{pledge_id}/{action}")
async def org_pledge_action(ctx: FacilitatorPage, recipient_id: str, pledge_id: str, action: str) -> Response:
    """Act on a pledge to a recipient."""
    return await act_on_pledge(ctx, *_on_behalf(recipient_id), pledge_id, action)
