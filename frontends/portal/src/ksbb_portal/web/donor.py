"""Donor pages: the pledge form, my pledges with their timeline and the recipient's contact, offers, profile."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from ksbb_contracts.vocab import DeliveryMode, DonorKind

from ksbb_portal import formatting
from ksbb_portal.api import ApiProblem
from ksbb_portal.web.common import kotas, new_form_key, progress_of
from ksbb_portal.web.context import DonorPage, Page
from ksbb_portal.web.forms import Problems, many, number_or_text, problems_of, text, values_of

router = APIRouter(include_in_schema=False)
#: Pledge states in which the donor reads the contact (the pledges service decides; this only avoids asking).
CONTACT_OPEN = {"pledged", "confirmed", "dispatched", "delivered"}
CANCELLABLE = {"pledged", "confirmed"}
PLEDGE_FIELDS = {"quantity", "planned_date", "mode", "note"}


# ------------------------------------------------------------------------------------------ pledge form


async def _need_and_ledger(ctx: Page, need_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    answers: list[Any] = list(await asyncio.gather(
        ctx.api.get_public(f"/v1/public/needs/{need_id}"), ctx.api.get_public(f"/v1/needs/{need_id}/ledger"),
        return_exceptions=True,
    ))
    found, live = answers
    if isinstance(found, BaseException):
        raise found
    # The ledger is optional here: without it the public numbers are shown.
    return dict(found), (dict(live) if isinstance(live, dict) else None)


async def _pledge_form(ctx: Page, need_id: str, *, values: dict[str, Any], problems: Problems | None = None,
                       notice: str | None = None, status: int = 200) -> HTMLResponse:
    need, ledger = await _need_and_ledger(ctx, need_id)
    bar = progress_of(ledger or need)
    tomorrow = formatting.jakarta_today() + timedelta(days=1)
    defaults = {"quantity": "", "planned_date": tomorrow.isoformat(), "mode": DeliveryMode.OWN_DELIVERY.value,
                "note": "", "form_key": new_form_key()}
    return await ctx.render(
        "pledge_form.html", status=status, title=ctx._("pledge_title"), need=need, bar=bar,
        values={**defaults, **values}, problems=problems or Problems(), notice=notice,
        errors=(problems.fields if problems else {}), min_date=formatting.jakarta_today().isoformat(),
    )


@router.get("/needs/{need_id}/pledge")
async def pledge_form(ctx: DonorPage, need_id: str) -> HTMLResponse:
    """The pledge form: quantity (with what remains), planned delivery date, who delivers."""
    return await _pledge_form(ctx, need_id, values={})


@router.post("/needs/{need_id}/pledge")
async def pledge(ctx: DonorPage, need_id: str) -> Response:
    """Send the pledge; on a conflict say what happened and keep what the donor typed."""
    form = await ctx.form()
    values = values_of(form)
    key = text(form, "form_key") or new_form_key()
    body = {"need_id": need_id, "quantity": number_or_text(form, "quantity"),
            "planned_date": text(form, "planned_date"), "mode": text(form, "mode") or DeliveryMode.OWN_DELIVERY.value,
            "note": text(form, "note")}
    try:
        answer = await ctx.api.call("POST", "/v1/pledges", json=body, headers={"Idempotency-Key": key[:100]})
    except ApiProblem as problem:
        if problem.status in (401, 403, 404) and problem.code != "need_not_found":
            raise
        return await _pledge_refused(ctx, need_id, values, problem)
    await ctx.flash("success", "pledge_thanks")
    return ctx.redirect(f"/my/pledges/{answer.data['pledge_id']}")


async def _pledge_refused(ctx: Page, need_id: str, values: dict[str, Any], problem: ApiProblem) -> HTMLResponse:
    need, ledger = await _need_and_ledger(ctx, need_id)
    unit = need.get("unit", "")
    notice = None
    problems = problems_of(problem, ctx.lang, PLEDGE_FIELDS)
    if problem.code == "over_pledged":
        available = problem.details.get("available", progress_of(ledger or need).remaining)
        notice = ctx._("conflict_over_pledged", available=formatting.number(available), unit=unit)
        problems = Problems(fields={"quantity": ctx._("too_many", available=formatting.number(available),
                                                      unit=unit)})
    elif problem.code in ("need_not_open", "need_not_found"):
        status = problem.details.get("need_status") or need.get("status", "")
        notice = ctx._("conflict_need_closed", status=ctx._label("need_status", status))
        problems = Problems()
    elif problem.code == "recipient_unavailable":
        notice, problems = ctx._("conflict_recipient"), Problems()
    return await _pledge_form(ctx, need_id, values=values, problems=problems, notice=notice,
                              status=409 if problem.status == 409 else 422)


# ------------------------------------------------------------------------------------------ my pledges


@router.get("/my/pledges")
async def my_pledges(ctx: DonorPage, cursor: str | None = None) -> HTMLResponse:
    """Every pledge of the donor, newest first, with its status."""
    page = await ctx.api.get("/v1/pledges", limit=50, cursor=cursor)
    return await ctx.render("my_pledges.html", title=ctx._("my_pledges_title"), pledges=page["items"],
                            next_cursor=page.get("next_cursor"))


async def _pledge_page(ctx: Page, pledge_id: str, *, notice: str | None = None, status: int = 200) -> HTMLResponse:
    pledge = await ctx.api.get(f"/v1/pledges/{pledge_id}")
    contact, contact_problem = None, None

    async def contact_of() -> None:
        nonlocal contact, contact_problem
        if pledge["status"] not in CONTACT_OPEN:
            return
        try:
            contact = await ctx.api.get(f"/v1/pledges/{pledge_id}/recipient-contact")
        except ApiProblem as problem:
            if problem.status >= 500:
                raise
            contact_problem = problem.code

    async def recipient_of() -> dict[str, Any]:
        with contextlib.suppress(ApiProblem):
            return dict(await ctx.api.get_public(f"/v1/public/recipients/{pledge['recipient_id']}"))
        return {}

    # Both need only the pledge: asked at the same time.
    _, recipient = await asyncio.gather(contact_of(), recipient_of())
    hours = (contact or {}).get("contact_within_hours", 48)
    deadline = formatting.to_jakarta(pledge["created_at"])
    return await ctx.render(
        "pledge_detail.html", status=status, title=ctx._("pledge_detail_title",
                                                         item=ctx._label("item", pledge["item"])),
        pledge=pledge, contact=contact, contact_problem=contact_problem, recipient=recipient, notice=notice,
        deadline=(deadline + timedelta(hours=hours)) if deadline else None, cancellable=pledge["status"] in CANCELLABLE,
        dispatchable=pledge["status"] == "confirmed" and pledge["mode"] == DeliveryMode.OWN_DELIVERY.value,
    )


@router.get("/my/pledges/{pledge_id}")
async def my_pledge(ctx: DonorPage, pledge_id: str) -> HTMLResponse:
    """One pledge: its timeline, the recipient's contact with the 2×24 h reminder, and what can be done next."""
    return await _pledge_page(ctx, pledge_id)


@router.post("/my/pledges/{pledge_id}/{action}")
async def act_on_pledge(ctx: DonorPage, pledge_id: str, action: str) -> Response:
    """Cancel a pledge, or mark it dispatched (own delivery)."""
    if action not in ("cancel", "dispatch"):
        raise ApiProblem(404, "not_found", "no such action")
    form = await ctx.form()
    body = {"reason": text(form, "reason")} if action == "cancel" else None
    try:
        await ctx.api.call("POST", f"/v1/pledges/{pledge_id}/{action}", json=body)
    except ApiProblem as problem:
        if problem.status != 409:
            raise
        current = problem.details.get("status", "")
        return await _pledge_page(ctx, pledge_id, status=409,
                                  notice=ctx._("conflict_state", status=ctx._label("pledge_status", current)))
    await ctx.flash("success", "pledge_cancelled" if action == "cancel" else "pledge_dispatched")
    return ctx.redirect(f"/my/pledges/{pledge_id}")


# ------------------------------------------------------------------------------------------ offers


@router.get("/my/offers")
async def my_offers(ctx: DonorPage) -> HTMLResponse:
    """The donor's offers of goods and where they stand."""
    page = await ctx.api.get("/v1/offers", limit=50)
    return await ctx.render("offers.html", title=ctx._("offers_title"), offers=page["items"])


async def _offer_form(ctx: Page, *, values: dict[str, Any], problems: Problems | None = None,
                      status: int = 200) -> HTMLResponse:
    defaults = {"item": "sembako", "quantity": "", "area_codes": [],
                "available_until": (formatting.jakarta_today() + timedelta(days=14)).isoformat(),
                "form_key": new_form_key()}
    merged = {**defaults, **values}
    if isinstance(merged["area_codes"], str):
        merged["area_codes"] = [merged["area_codes"]]
    return await ctx.render("offer_form.html", status=status, title=ctx._("new_offer"), values=merged,
                            problems=problems or Problems(), errors=problems.fields if problems else {},
                            kotas=kotas(), min_date=formatting.jakarta_today().isoformat())


@router.get("/my/offers/new")
async def offer_form(ctx: DonorPage) -> HTMLResponse:
    """The offer form: item, quantity, areas, how long it is available."""
    return await _offer_form(ctx, values={})


@router.post("/my/offers/new")
async def offer(ctx: DonorPage) -> Response:
    """Send the offer; the pledges service proposes needs at once."""
    form = await ctx.form()
    body = {"item": text(form, "item"), "quantity": number_or_text(form, "quantity"),
            "area_codes": many(form, "area_codes"), "available_until": text(form, "available_until")}
    try:
        answer = await ctx.api.call("POST", "/v1/offers", json=body,
                                    headers={"Idempotency-Key": (text(form, "form_key") or new_form_key())[:100]})
    except ApiProblem as problem:
        if problem.status in (401, 403):
            raise
        return await _offer_form(ctx, values=values_of(form), status=problem.status,
                                 problems=problems_of(problem, ctx.lang, {"item", "quantity", "area_codes",
                                                                          "available_until"}))
    return ctx.redirect(f"/my/offers/{answer.data['offer_id']}")


async def _offer_page(ctx: Page, offer_id: str, *, notice: str | None = None, status: int = 200) -> HTMLResponse:
    found = await ctx.api.get(f"/v1/offers/{offer_id}")

    async def need_of(proposal: dict[str, Any]) -> dict[str, Any]:
        with contextlib.suppress(ApiProblem):
            return dict(await ctx.api.get_public(f"/v1/public/needs/{proposal['need_id']}"))
        return {}

    needs = await asyncio.gather(*(need_of(p) for p in found.get("proposals", [])[:20]))
    tomorrow = formatting.jakarta_today() + timedelta(days=1)
    return await ctx.render("offer.html", status=status, title=ctx._("offer_title",
                                                                    item=ctx._label("item", found["item"])),
                            offer=found, needs=needs, notice=notice, planned=tomorrow.isoformat(),
                            min_date=formatting.jakarta_today().isoformat())


@router.get("/my/offers/{offer_id}")
async def my_offer(ctx: DonorPage, offer_id: str) -> HTMLResponse:
    """One offer with the proposed needs; accept or decline."""
    return await _offer_page(ctx, offer_id)


@router.post("/my/offers/{offer_id}/{action}")
async def decide_offer(ctx: DonorPage, offer_id: str, action: str) -> Response:
    """Accept the proposals (they become pledges) or decline them."""
    if action not in ("accept", "decline"):
        raise ApiProblem(404, "not_found", "no such action")
    form = await ctx.form()
    body = ({"planned_date": text(form, "planned_date"), "mode": text(form, "mode") or "own_delivery"}
            if action == "accept" else None)
    try:
        await ctx.api.call("POST", f"/v1/offers/{offer_id}/{action}", json=body)
    except ApiProblem as problem:
        if problem.status not in (409, 422):
            raise
        return await _offer_page(ctx, offer_id, status=problem.status,
                                 notice=problems_of(problem, ctx.lang, set()).general[0])
    await ctx.flash("success", "offer_accepted" if action == "accept" else "offer_declined")
    return ctx.redirect(f"/my/offers/{offer_id}")


# ------------------------------------------------------------------------------------------ profile

PROFILE_FIELDS = {"kind", "display_name", "show_name", "contact.name", "contact.email", "contact.phone"}


@router.get("/my/profile")
async def profile(ctx: DonorPage) -> HTMLResponse:
    """The donor's public display name (or anonymity) and contact."""
    values: dict[str, Any] = {"kind": DonorKind.PERSON.value, "display_name": ctx.session.person.name or ""
                              if ctx.session else "", "show_name": False}
    try:
        found = await ctx.api.get("/v1/donors/me")
    except ApiProblem as problem:
        if problem.status != 404:
            raise
    else:
        contact = found.get("contact") or {}
        values = {"kind": found["kind"], "display_name": found["display_name"], "show_name": found["show_name"],
                  "contact.name": contact.get("name") or "", "contact.email": contact.get("email") or "",
                  "contact.phone": contact.get("phone") or ""}
    return await ctx.render("profile.html", title=ctx._("profile_title"), values=values, problems=Problems())


@router.post("/my/profile")
async def save_profile(ctx: DonorPage) -> Response:
    """Create or replace the donor profile."""
    form = await ctx.form()
    contact = {"name": text(form, "contact.name"), "email": text(form, "contact.email"),
               "phone": text(form, "contact.phone")}
    body = {"kind": text(form, "kind"), "display_name": text(form, "display_name"),
            "show_name": form.get("show_name") == "1", "contact": contact if any(contact.values()) else None}
    try:
        await ctx.api.call("PUT", "/v1/donors/me", json=body)
    except ApiProblem as problem:
        if problem.status in (401, 403):
            raise
        values = {**values_of(form), "show_name": form.get("show_name") == "1"}
        problems = problems_of(problem, ctx.lang, PROFILE_FIELDS)
        return await ctx.render("profile.html", status=problem.status, title=ctx._("profile_title"), values=values,
                                problems=problems, errors=problems.fields)
    await ctx.flash("success", "profile_saved")
    return ctx.redirect("/my/profile")
