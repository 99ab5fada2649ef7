"""The organisation's webhook endpoints: create (the secret shown once), filters, enable/disable, rotate the
secret, send a test event, the delivery log with redelivery, and recovery of everything failed since a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from ksbb_contracts import EVENT_TYPES

from ksbb_portal import formatting, i18n
from ksbb_portal.api import ApiProblem
from ksbb_portal.web.common import kotas
from ksbb_portal.web.context import FacilitatorPage, Page
from ksbb_portal.web.forms import Problems, many, problems_of, text, values_of

router = APIRouter(prefix="/org/webhooks", include_in_schema=False)
ENDPOINT_FIELDS = {"url", "description", "event_types", "kota_codes", "recipient_kinds"}
#: The event families offered as checkboxes (others can be typed as globs).
GROUPS = tuple(i18n.LABELS["event_group"])


def _event_types(form: Any) -> list[str]:
    chosen = many(form, "event_types")
    typed = [p.strip() for p in (text(form, "custom_event_types") or "").split(",") if p.strip()]
    return [*chosen, *typed]


def _filters(form: Any) -> dict[str, Any]:
    return {"event_types": _event_types(form), "kota_codes": many(form, "kota_codes"),
            "recipient_kinds": many(form, "recipient_kinds")}


def _as_values(endpoint: dict[str, Any]) -> dict[str, Any]:
    groups = [t for t in endpoint.get("event_types", []) if t in GROUPS]
    custom = [t for t in endpoint.get("event_types", []) if t not in GROUPS]
    return {"url": endpoint["url"], "description": endpoint.get("description") or "", "event_types": groups,
            "custom_event_types": ", ".join(custom), "kota_codes": endpoint.get("kota_codes", []),
            "recipient_kinds": endpoint.get("recipient_kinds", [])}


def _listify(values: dict[str, Any]) -> dict[str, Any]:
    for name in ("event_types", "kota_codes", "recipient_kinds"):
        value = values.get(name, [])
        values[name] = [value] if isinstance(value, str) and value else (value or [])
    return values


@router.get("")
async def endpoints(ctx: FacilitatorPage) -> HTMLResponse:
    """The organisation's endpoints."""
    found = await ctx.api.get("/v1/webhooks/endpoints")
    return await ctx.render("webhooks.html", title=ctx._("webhooks_title"), endpoints=found["items"])


async def _endpoint_form(ctx: Page, *, values: dict[str, Any], problems: Problems | None = None,
                         status: int = 200) -> HTMLResponse:
    return await ctx.render("webhook_form.html", status=status, title=ctx._("new_endpoint"),
                            values=_listify({"url": "", "description": "", "custom_event_types": "", **values}),
                            problems=problems or Problems(), errors=problems.fields if problems else {},
                            kotas=kotas(), groups=GROUPS, known_types=sorted(EVENT_TYPES))


@router.get("/new")
async def new_endpoint(ctx: FacilitatorPage) -> HTMLResponse:
    """The form of a new endpoint."""
    return await _endpoint_form(ctx, values={})


@router.post("/new")
async def create_endpoint(ctx: FacilitatorPage) -> Response:
    """Register the endpoint; the answer is the only time the secret is shown (never stored by the portal)."""
    form = await ctx.form()
    body = {"url": text(form, "url"), "description": text(form, "description"), **_filters(form)}
    try:
        answer = await ctx.api.call("POST", "/v1/webhooks/endpoints", json=body)
    except ApiProblem as problem:
        if problem.status in (401, 403):
            raise
        return await _endpoint_form(ctx, values=values_of(form), status=problem.status,
                                    problems=problems_of(problem, ctx.lang, ENDPOINT_FIELDS))
    return await ctx.render("webhook_secret.html", status=201, title=ctx._("endpoint_created"),
                            endpoint=answer.data, secret=answer.data["secret"], until=None)


async def _endpoint_page(ctx: Page, endpoint_id: str, *, typed: dict[str, Any] | None = None,
                         problems: Problems | None = None, changed: bool = False, notice: str | None = None,
                         status: int = 200, delivery_status: str | None = None) -> HTMLResponse:
    answer = await ctx.api.call("GET", f"/v1/webhooks/endpoints/{endpoint_id}")
    endpoint = answer.data
    deliveries = await ctx.api.get(f"/v1/webhooks/endpoints/{endpoint_id}/deliveries", limit=25,
                                   status=delivery_status)
    current = _as_values(endpoint)
    values = _listify({**current, **(typed or {}), "etag": answer.etag or ""})
    now = formatting.to_jakarta(datetime.now(UTC))
    return await ctx.render(
        "webhook.html", status=status, title=endpoint["url"], endpoint=endpoint, deliveries=deliveries["items"],
        values=values, current=current if changed else {}, changed=changed, notice=notice,
        problems=problems or Problems(), errors=problems.fields if problems else {}, kotas=kotas(), groups=GROUPS,
        recover_default=now.strftime("%Y-%m-%dT00:00") if now else "", delivery_status=delivery_status,
    )


@router.get("/{endpoint_id}")
async def endpoint(ctx: FacilitatorPage, endpoint_id: str, status: str | None = None) -> HTMLResponse:
    """One endpoint: filters, state, actions and its delivery log (refreshed every few seconds with JS)."""
    return await _endpoint_page(ctx, endpoint_id, delivery_status=status)


@router.post("/{endpoint_id}")
async def save_endpoint(ctx: FacilitatorPage, endpoint_id: str) -> Response:
    """Change URL, description and filters (If-Match); a concurrent change brings both versions back."""
    form = await ctx.form()
    body = {"url": text(form, "url"), "description": text(form, "description"), **_filters(form)}
    etag = text(form, "etag")
    try:
        await ctx.api.call("PATCH", f"/v1/webhooks/endpoints/{endpoint_id}", json=body,
                           headers={"If-Match": etag} if etag else None)
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        typed = {k: v for k, v in values_of(form).items() if k != "etag"}
        if problem.status == 412:
            return await _endpoint_page(ctx, endpoint_id, typed=typed, changed=True, status=412)
        return await _endpoint_page(ctx, endpoint_id, typed=typed, status=problem.status,
                                    problems=problems_of(problem, ctx.lang, ENDPOINT_FIELDS))
    await ctx.flash("success", "endpoint_saved")
    return ctx.redirect(f"/org/webhooks/{endpoint_id}")


@router.post("/{endpoint_id}/{action}")
async def endpoint_action(ctx: FacilitatorPage, endpoint_id: str, action: str) -> Response:
    """Enable, disable, rotate the secret, send a test event, recover since a time, or delete."""
    form = await ctx.form()
    base = f"/v1/webhooks/endpoints/{endpoint_id}"
    try:
        if action in ("enable", "disable"):
            await ctx.api.call("PATCH", base, json={"enabled": action == "enable"})
            await ctx.flash("success", "endpoint_saved")
        elif action == "rotate":
            answer = await ctx.api.call("POST", f"{base}/rotate-secret")
            return await ctx.render("webhook_secret.html", title=ctx._("rotate_secret"), endpoint={"id": endpoint_id},
                                    secret=answer.data["secret"],
                                    until=formatting.date_time(answer.data["previous_secret_valid_until"], ctx.lang))
        elif action == "test":
            await ctx.api.call("POST", f"{base}/test")
            await ctx.flash("success", "test_sent")
        elif action == "recover":
            since = _jakarta_to_utc(text(form, "since"))
            answer = await ctx.api.call("POST", f"{base}/recover", json={"since": since})
            await ctx.flash("success", "recovered", count=formatting.number(answer.data["requeued"]))
        elif action == "delete":
            await ctx.api.call("DELETE", base)
            await ctx.flash("success", "endpoint_deleted")
            return ctx.redirect("/org/webhooks")
        else:
            raise ApiProblem(404, "not_found", "no such action")
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        return await _endpoint_page(ctx, endpoint_id, status=problem.status,
                                    notice=problems_of(problem, ctx.lang, set()).general[0])
    return ctx.redirect(f"/org/webhooks/{endpoint_id}")


def _jakarta_to_utc(value: str | None) -> str | None:
    """A datetime-local value typed on Jakarta's clock, as the UTC instant the API expects."""
    if not value:
        return None
    try:
        local = datetime.fromisoformat(value)
    except ValueError:
        return value  # the API names the problem next to the field
    return local.replace(tzinfo=formatting.JAKARTA).astimezone(UTC).isoformat()


@router.get("/{endpoint_id}/deliveries/{delivery_id}")
async def delivery(ctx: FacilitatorPage, endpoint_id: str, delivery_id: str) -> HTMLResponse:
    """One delivery with every attempt (status code, time taken, the receiver's answer)."""
    found = await ctx.api.get(f"/v1/webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}")
    return await ctx.render("delivery.html", title=ctx._("delivery_title", id=delivery_id), delivery=found,
                            endpoint_id=endpoint_id)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(ctx: FacilitatorPage, endpoint_id: str, delivery_id: str) -> Response:
    """Send one message again now."""
    await ctx.form()
    try:
        await ctx.api.call("POST", f"/v1/webhooks/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver")
    except ApiProblem as problem:
        if problem.status in (401, 403, 404):
            raise
        return await _endpoint_page(ctx, endpoint_id, status=problem.status,
                                    notice=problems_of(problem, ctx.lang, set()).general[0])
    await ctx.flash("success", "redelivered")
    return ctx.redirect(f"/org/webhooks/{endpoint_id}")
