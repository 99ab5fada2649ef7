"""Facilitator (NGO staff) pages: verification queue, recipients and their lifecycle, pledges awaiting
confirmation, concern reports, staff. Webhooks have their own module."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from ksbb_contracts.vocab import RecipientKind

from ksbb_portal.api import ApiProblem
from ksbb_portal.web.common import area_name, kecamatans, kelurahans, kotas, new_form_key
from ksbb_portal.web.context import FacilitatorPage, Page
from ksbb_portal.web.forms import Problems, number_or_text, problems_of, text, values_of

router = APIRouter(prefix="/org", include_in_schema=False)
QUEUE_SIZE = 20
LIFECYCLE = ("verify", "activate", "suspend", "reinstate", "archive")
#: Which lifecycle steps the page offers from which status (the registry's table decides who may).
OFFERED = {"registered": ("verify", "archive"), "verified": ("activate", "archive"),
           "active": ("suspend", "archive"), "suspended": ("reinstate", "archive"), "archived": ()}
REASON_REQUIRED = {"verify", "suspend", "archive"}
INVITE_FIELDS = {"email", "first_name", "last_name"}
RECIPIENT_FIELDS = {
    "name", "kind", "kind_description", "kelurahan_code", "rw", "rt", "street_address", "beneficiaries.households",
    "beneficiaries.people", "beneficiaries.children", "beneficiaries.elderly", "beneficiaries.disabled",
    "contact.name", "contact.phone", "contact.email", "notes",
}


def _org(ctx: Page) -> str:
    assert ctx.session is not None and ctx.session.person.org_id
    return ctx.session.person.org_id


@router.get("")
async def org_home(ctx: FacilitatorPage) -> Response:
    """The facilitator's start page is the verification queue."""
    return ctx.redirect("/org/verification")


# ------------------------------------------------------------------------------------------ verification


def _words(name: str) -> set[str]:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return {w for w in re.findall(r"[a-z0-9]+", plain) if len(w) > 2 and w not in {"panti", "asuhan", "yayasan"}}


def duplicate_candidates(recipient: dict[str, Any], neighbours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Other live recipients of the same kelurahan that look like the same unit: same RW, or most name words
    shared (the registry refuses exact duplicates; this catches the near ones a person should look at)."""
    found = []
    words = _words(recipient["name"])
    for other in neighbours:
        if other["recipient_id"] == recipient["recipient_id"] or other["status"] == "archived":
            continue
        same_rw = recipient.get("rw") is not None and other.get("rw") == recipient.get("rw") \
            and recipient["kind"] == other["kind"] == RecipientKind.RW_RENTAN.value
        shared = words & _words(other["name"])
        if same_rw or (words and len(shared) * 2 >= len(words)):
            found.append(other)
    return found


@router.get("/verification")
async def verification_queue(ctx: FacilitatorPage) -> HTMLResponse:
    """Newly registered recipients with duplicate warnings and their audit trail."""
    page = await ctx.api.get("/v1/recipients", status="registered", limit=QUEUE_SIZE)
    queue = page["items"]

    async def inspect(recipient: dict[str, Any]) -> dict[str, Any]:
        audit, neighbours = await asyncio.gather(
            ctx.api.get(f"/v1/recipients/{recipient['recipient_id']}/audit"),
            ctx.api.get("/v1/recipients", kelurahan=recipient["kelurahan_code"], limit=100),
        )
        return {**recipient, "audit": audit, "duplicates": duplicate_candidates(recipient, neighbours["items"])}

    inspected = await asyncio.gather(*(inspect(r) for r in queue))
    return await ctx.render("verification.html", title=ctx._("queue_title"), queue=inspected,
                            area_name=area_name)


# ------------------------------------------------------------------------------------------ recipients


@router.get("/recipients")
async def recipients(ctx: FacilitatorPage, status: str | None = None, cursor: str | None = None) -> HTMLResponse:
    """The organisation's recipients, by status."""
    page = await ctx.api.get("/v1/recipients", status=status or None, limit=50, cursor=cursor)
    return await ctx.render("org_recipients.html", title=ctx._("recipients_title"), recipients=page["items"],
                            next_cursor=page.get("next_cursor"), status_filter=status, area_name=area_name)


def _recipient_body(form: Any, org_id: str | None) -> dict[str, Any]:
    contact = {"name": text(form, "contact.name"), "phone": text(form, "contact.phone"),
               "email": text(form, "contact.email")}
    beneficiaries = {key: number_or_text(form, f"beneficiaries.{key}") or 0
                     for key in ("households", "people", "children", "elderly", "disabled")}
    body: dict[str, Any] = {
        "name": text(form, "name"), "kind_description": text(form, "kind_description"),
        "kelurahan_code": text(form, "kelurahan_code"), "rw": number_or_text(form, "rw"),
        "rt": number_or_text(form, "rt"), "street_address": text(form, "street_address"),
        "beneficiaries": beneficiaries, "contact": contact, "notes": text(form, "notes"),
    }
    if org_id is not None:  # a new recipient: kind and organisation are set once
        body["kind"] = text(form, "kind")
        body["organisation_id"] = org_id
    return body


async def _recipient_form(ctx: Page, *, values: dict[str, Any], problems: Problems | None = None,
                          status: int = 200) -> HTMLResponse:
    defaults = {"kind": RecipientKind.RW_RENTAN.value, "form_key": new_form_key()}
    merged = {**defaults, **values}
    kota = merged.get("kota") or (merged.get("kelurahan_code") or "")[:5] or None
    kecamatan = merged.get("kecamatan") or (merged.get("kelurahan_code") or "")[:8] or None
    return await ctx.render("recipient_form.html", status=status, title=ctx._("register_recipient"), values=merged,
                            problems=problems or Problems(), errors=problems.fields if problems else {}, current={},
                            kotas=kotas(), kecamatans=kecamatans(kota), kelurahans=kelurahans(kecamatan))


@router.get("/recipients/new")
async def new_recipient_form(ctx: FacilitatorPage, kota: str | None = None,
                             kecamatan: str | None = None) -> HTMLResponse:
    """Register a recipient: the area is chosen kota → kecamatan → kelurahan (the form reloads without JS)."""
    return await _recipient_form(ctx, values={"kota": kota or "", "kecamatan": kecamatan or ""})


@router.post("/recipients/new")
async def register_recipient(ctx: FacilitatorPage) -> Response:
    """Send the registration; a duplicate or a bad field comes back next to the field."""
    form = await ctx.form()
    if form.get("refresh_areas"):  # the area pickers were changed without JavaScript: show the next level
        return await _recipient_form(ctx, values=values_of(form))
    try:
        answer = await ctx.api.call("POST", "/v1/recipients", json=_recipient_body(form, _org(ctx)),
                                    headers={"Idempotency-Key": (text(form, "form_key") or new_form_key())[:100]})
    except ApiProblem as problem:
        if problem.status in (401, 403):
            raise
        return await _recipient_form(ctx, values=values_of(form), status=problem.status,
                                     problems=problems_of(problem, ctx.lang, RECIPIENT_FIELDS))
    await ctx.flash("success", "recipient_registered")
    return ctx.redirect(f"/org/recipients/{answer.data['recipient_id']}")


def _form_values(recipient: dict[str, Any]) -> dict[str, str]:
    """A recipient as edit-form values."""
    contact = recipient.get("contact") or {}
    values = {"name": recipient["name"], "kind_description": recipient.get("kind_description") or "",
              "kelurahan_code": recipient["kelurahan_code"], "rw": recipient.get("rw") or "",
              "rt": recipient.get("rt") or "", "street_address": recipient["street_address"],
              "notes": recipient.get("notes") or "", "contact.name": contact.get("name") or "",
              "contact.phone": contact.get("phone") or "", "contact.email": contact.get("email") or ""}
    for key, value in (recipient.get("beneficiaries") or {}).items():
        values[f"beneficiaries.{key}"] = value
    return {k: str(v) for k, v in values.items()}


async def _recipient_page(ctx: Page, recipient_id: str, *, typed: dict[str, Any] | None = None,
                          problems: Problems | None = None, changed: bool = False, notice: str | None = None,
                          status: int = 200, invite: dict[str, Any] | None = None) -> HTMLResponse:
    answer = await ctx.api.call("GET", f"/v1/recipients/{recipient_id}")
    recipient = answer.data
    audit, accounts = await asyncio.gather(ctx.api.get(f"/v1/recipients/{recipient_id}/audit"),
                                           ctx.api.get(f"/v1/recipients/{recipient_id}/accounts", limit=50))
    current = _form_values(recipient)
    values = {**current, **(typed or {}), "etag": answer.etag or ""}
    return await ctx.render(
        "org_recipient.html", status=status, title=recipient["name"], recipient=recipient, audit=audit,
        values=values, current=current if changed else {}, changed=changed, notice=notice,
        problems=problems or Problems(), errors=problems.fields if problems else {},
        offered=OFFERED.get(recipient["status"], ()), reason_required=REASON_REQUIRED, area_name=area_name,
        kelurahans=kelurahans(recipient["kecamatan_code"]), accounts=accounts["items"],
        invite=invite or {"values": {"form_key": new_form_key()}, "errors": {}},
    )


@router.get("/recipients/{recipient_id}")
async def recipient(ctx: FacilitatorPage, recipient_id: str) -> HTMLResponse:
    """One recipient: its data (editable), lifecycle actions, audit trail, needs and pledges."""
    return await _recipient_page(ctx, recipient_id)


@router.post("/recipients/{recipient_id}")
async def save_recipient(ctx: FacilitatorPage, recipient_id: str) -> Response:
    """Change a recipient with If-Match; after a concurrent change the form returns with both versions."""
    form = await ctx.form()
    etag = text(form, "etag")
    try:
        await ctx.api.call("PATCH", f"/v1/recipients/{recipient_id}", json=_recipient_body(form, None),
                           headers={"If-Match": etag} if etag else None)
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        typed = {k: v for k, v in values_of(form).items() if k not in ("etag",)}
        if problem.status == 412:
            return await _recipient_page(ctx, recipient_id, typed=typed, changed=True, status=412)
        return await _recipient_page(ctx, recipient_id, typed=typed, status=problem.status,
                                     problems=problems_of(problem, ctx.lang, RECIPIENT_FIELDS))
    await ctx.flash("success", "recipient_saved")
    return ctx.redirect(f"/org/recipients/{recipient_id}")


@router.post("/recipients/{recipient_id}/lifecycle/{action}")
async def lifecycle(ctx: FacilitatorPage, recipient_id: str, action: str) -> Response:
    """Verify, activate, suspend, reinstate or archive a recipient (the registry says who may)."""
    if action not in LIFECYCLE:
        raise ApiProblem(404, "not_found", "no such action")
    form = await ctx.form()
    refs = [r.strip() for r in (text(form, "document_refs") or "").split(",") if r.strip()]
    etag = text(form, "etag")
    try:
        answer = await ctx.api.call("POST", f"/v1/recipients/{recipient_id}/{action}",
                                    json={"reason": text(form, "reason"), "document_refs": refs},
                                    headers={"If-Match": etag} if etag else None)
    except ApiProblem as problem:
        if problem.status in (401, 404):
            raise
        if problem.status == 412:
            return await _recipient_page(ctx, recipient_id, status=412, notice=ctx._("changed_elsewhere"))
        message = problems_of(problem, ctx.lang, set()).general[0]
        return await _recipient_page(ctx, recipient_id, status=problem.status, notice=message)
    await ctx.flash("success", "recipient_changed", status=ctx._label("recipient_status", answer.data["status"]))
    if text(form, "from") == "queue":
        return ctx.redirect("/org/verification")
    return ctx.redirect(f"/org/recipients/{recipient_id}")


@router.post("/recipients/{recipient_id}/accounts")
async def invite_contact(ctx: FacilitatorPage, recipient_id: str) -> Response:
    """Invite the unit's contact person: the identity provider e-mails them a link to set a password."""
    form = await ctx.form()
    body = {"email": text(form, "email"), "first_name": text(form, "first_name"),
            "last_name": text(form, "last_name")}
    try:
        await ctx.api.call("POST", f"/v1/recipients/{recipient_id}/accounts", json=body,
                           headers={"Idempotency-Key": (text(form, "form_key") or new_form_key())[:100]})
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        found = problems_of(problem, ctx.lang, INVITE_FIELDS, renames={"email": "email"})
        return await _recipient_page(ctx, recipient_id, status=problem.status,
                                     notice=found.general[0] if found.general else None,
                                     invite={"values": values_of(form), "errors": found.fields})
    await ctx.flash("success", "invitation_sent", email=body["email"] or "")
    return ctx.redirect(f"/org/recipients/{recipient_id}")


@router.post("/recipients/{recipient_id}/accounts/{account_id}/revoke")
async def revoke_contact(ctx: FacilitatorPage, recipient_id: str, account_id: str) -> Response:
    """Revoke a unit's account: the identity provider disables it."""
    await ctx.form()
    try:
        await ctx.api.call("DELETE", f"/v1/recipients/{recipient_id}/accounts/{account_id}")
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        return await _recipient_page(ctx, recipient_id, status=problem.status,
                                     notice=problems_of(problem, ctx.lang, set()).general[0])
    await ctx.flash("success", "account_revoked")
    return ctx.redirect(f"/org/recipients/{recipient_id}")


# ------------------------------------------------------------------------------------------ pledges


@router.get("/pledges")
async def awaiting(ctx: FacilitatorPage) -> HTMLResponse:
    """Pledges waiting for confirmation across the organisation's recipients with open needs."""
    page = await ctx.api.get("/v1/recipients", has_open_needs=True, limit=50)

    async def pledged_to(recipient: dict[str, Any]) -> list[dict[str, Any]]:
        found = await ctx.api.get(f"/v1/recipients/{recipient['recipient_id']}/pledges", limit=100)
        return [{**p, "recipient_name": recipient["name"]} for p in found["items"] if p["status"] == "pledged"]

    lists = await asyncio.gather(*(pledged_to(r) for r in page["items"]))
    waiting = sorted((p for found in lists for p in found), key=lambda p: p["created_at"])
    return await ctx.render("org_pledges.html", title=ctx._("awaiting_confirmation"), pledges=waiting)


# ------------------------------------------------------------------------------------------ reports


@router.get("/reports")
async def reports(ctx: FacilitatorPage) -> HTMLResponse:
    """Open concern reports about the organisation's recipients."""
    page = await ctx.api.get("/v1/reports", status="open", limit=50)
    return await ctx.render("reports.html", title=ctx._("reports_title"), reports=page["items"], errors={},
                            problems=Problems())


@router.post("/reports/{report_id}/resolve")
async def resolve_report(ctx: FacilitatorPage, report_id: str) -> Response:
    """Close a report with an outcome and a note."""
    form = await ctx.form()
    try:
        await ctx.api.call("POST", f"/v1/reports/{report_id}/resolve",
                           json={"outcome": text(form, "outcome"), "note": text(form, "note")})
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        page = await ctx.api.get("/v1/reports", status="open", limit=50)
        found = problems_of(problem, ctx.lang, set())
        return await ctx.render("reports.html", status=problem.status, title=ctx._("reports_title"),
                                reports=page["items"], problems=found, errors={})
    await ctx.flash("success", "report_resolved")
    return ctx.redirect("/org/reports")


# ------------------------------------------------------------------------------------------ staff


@router.get("/staff")
async def staff(ctx: FacilitatorPage) -> HTMLResponse:
    """The organisation's staff accounts (administrators invite staff; facilitators invite unit contacts)."""
    members = await ctx.api.get(f"/v1/organisations/{_org(ctx)}/members", limit=100)
    return await ctx.render("staff.html", title=ctx._("staff_title"), members=members["items"],
                            organisations=[], chosen=None, invite=None)
