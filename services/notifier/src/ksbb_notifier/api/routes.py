"""HTTP routes of the notifier service: webhook endpoints, secrets, test events, delivery log, replay."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from ksbb_kit.auth import Principal, Role, require_roles
from ksbb_kit.errors import ERROR_RESPONSES, ApiError
from ksbb_kit.http import check_if_match, decode_cursor, encode_cursor, etag_for
from ksbb_kit.ids import new_id
from pymongo import ReturnDocument

from ksbb_notifier.adapters.http_sender import UrlRefused, check_url
from ksbb_notifier.adapters.store import EPOCH
from ksbb_notifier.api.models import (
    AttemptPublic,
    DeliveryPage,
    DeliveryPublic,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointPublic,
    EndpointUpdate,
    RecoverRequest,
    RecoverResult,
    SecretRotated,
    TestEventSent,
)
from ksbb_notifier.components import Components
from ksbb_notifier.domain.routing import TEST_EVENT_TYPE
from ksbb_notifier.domain.signing import generate_secret, secret_hint
from ksbb_notifier.domain.ssrf import AddressRefused
from ksbb_notifier.service import new_delivery

Staff = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.FACILITATOR))]


def components(request: Request) -> Components:
    """The wired collaborators of this instance."""
    return request.app.state.notifier


Ctx = Annotated[Components, Depends(components)]


def endpoint_public(doc: dict[str, Any]) -> EndpointPublic:
    """The public view of a stored endpoint."""
    secrets = doc.get("secrets", [])
    previous = [s["valid_until"] for s in secrets[1:] if s.get("valid_until") is not None]
    return EndpointPublic(
        id=doc["_id"],
        organisation_id=doc.get("organisation_id"),
        url=doc["url"],
        description=doc.get("description"),
        event_types=doc.get("event_types", []),
        kota_codes=doc.get("kota_codes", []),
        recipient_kinds=doc.get("recipient_kinds", []),
        rate_limit_per_second=doc.get("rate_limit_per_second"),
        enabled=doc["enabled"],
        disabled_reason=doc.get("disabled_reason"),
        secret_hint=secrets[0]["hint"] if secrets else "",
        previous_secret_valid_until=max(previous) if previous else None,
        failing_since=doc.get("failing_since"),
        version=doc["version"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def delivery_public(doc: dict[str, Any]) -> DeliveryPublic:
    """The public view of a stored delivery."""
    return DeliveryPublic(
        id=doc["_id"],
        message_id=doc["message_id"],
        endpoint_id=doc["endpoint_id"],
        event_type=doc["event_type"],
        status=doc["status"],
        attempts=doc.get("attempts", 0),
        next_attempt_at=doc.get("next_attempt_at") if doc["status"] == "pending" else None,
        failure_reason=doc.get("failure_reason"),
        last_status_code=doc.get("last_status_code"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        attempt_log=[AttemptPublic(**entry) for entry in doc.get("attempt_log", [])],
    )


def _validate_url(ctx: Components, url: str) -> None:
    try:
        parsed = check_url(url, ctx.settings.insecure_http_hosts)
    except UrlRefused as exc:
        raise ApiError(422, "invalid_url", str(exc), field="url") from exc
    try:
        ipaddress.ip_address(parsed.host)
    except ValueError:
        return  # names are resolved and checked at every delivery
    try:  # literal addresses get fast feedback
        ctx.policy.check(parsed.host, parsed.host)
    except AddressRefused as exc:
        raise ApiError(422, "url_not_allowed", str(exc), field="url") from exc


async def _endpoint_for(ctx: Components, principal: Principal, endpoint_id: str) -> dict[str, Any]:
    """The endpoint if the caller may manage it; 404 otherwise (others' endpoints stay hidden)."""
    doc = await ctx.store.endpoints.find_one({"_id": endpoint_id})
    if doc is None or not (principal.is_admin or principal.is_facilitator_of(doc.get("organisation_id"))):
        raise ApiError(404, "endpoint_not_found", f"no webhook endpoint {endpoint_id}", field="endpoint_id")
    return doc


def _require_enabled(doc: dict[str, Any]) -> None:
    if not doc.get("enabled"):
        raise ApiError(409, "endpoint_disabled", "the endpoint is disabled; enable it first", field="enabled")


def build_api() -> APIRouter:
    """The notifier service's /v1 routes."""
    api = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)

    @api.post(
        "/endpoints",
        status_code=201,
        response_model=EndpointCreated,
        summary="Register a webhook endpoint (the secret is returned only here)",
    )
    async def create_endpoint(body: EndpointCreate, principal: Staff, ctx: Ctx, response: Response) -> EndpointCreated:
        organisation_id = body.organisation_id
        if principal.role is Role.FACILITATOR:
            if organisation_id is not None and organisation_id != principal.org_id:
                raise ApiError(
                    403,
                    "forbidden",
                    "facilitators manage only their own organisation's endpoints",
                    field="organisation_id",
                )
            organisation_id = principal.org_id
        _validate_url(ctx, body.url)
        now = ctx.clock.now()
        secret = generate_secret()
        doc = {
            "_id": new_id("whe"),
            "organisation_id": organisation_id,
            "url": body.url,
            "description": body.description,
            "event_types": body.event_types,
            "kota_codes": body.kota_codes,
            "recipient_kinds": [k.value for k in body.recipient_kinds],
            "rate_limit_per_second": body.rate_limit_per_second,
            "enabled": True,
            "disabled_reason": None,
            "secrets": [
                {
                    "sealed": ctx.box.seal(secret),
                    "hint": secret_hint(secret),
                    "valid_until": None,
                    "created_at": now,
                }
            ],
            "failing_since": None,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "created_by": principal.subject,
        }
        await ctx.store.endpoints.insert_one(doc)
        response.headers["ETag"] = etag_for(str(doc["_id"]), 1)
        response.headers["Location"] = f"/v1/webhooks/endpoints/{doc['_id']}"
        return EndpointCreated(**endpoint_public(doc).model_dump(), secret=secret)

    @api.get("/endpoints", response_model=EndpointList, summary="List the endpoints the caller may manage")
    async def list_endpoints(
        principal: Staff,
        ctx: Ctx,
        organisation_id: Annotated[str | None, Query(max_length=100)] = None,
    ) -> EndpointList:
        query: dict[str, Any] = {}
        if principal.role is Role.FACILITATOR:
            query["organisation_id"] = principal.org_id
        elif organisation_id is not None:
            query["organisation_id"] = organisation_id
        docs = await ctx.store.endpoints.find(query).sort("created_at", 1).to_list(1000)
        return EndpointList(items=[endpoint_public(d) for d in docs])

    @api.get("/endpoints/{endpoint_id}", response_model=EndpointPublic, summary="One endpoint")
    async def get_endpoint(endpoint_id: str, principal: Staff, ctx: Ctx, response: Response) -> EndpointPublic:
        doc = await _endpoint_for(ctx, principal, endpoint_id)
        response.headers["ETag"] = etag_for(doc["_id"], doc["version"])
        return endpoint_public(doc)

    @api.patch(
        "/endpoints/{endpoint_id}",
        response_model=EndpointPublic,
        summary="Change an endpoint (URL, filters, rate limit, enable/disable)",
    )
    async def update_endpoint(
        endpoint_id: str,
        body: EndpointUpdate,
        principal: Staff,
        ctx: Ctx,
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
    ) -> EndpointPublic:
        doc = await _endpoint_for(ctx, principal, endpoint_id)
        check_if_match(if_match, doc["_id"], doc["version"])
        changes: dict[str, Any] = body.model_dump(exclude_unset=True, mode="json")
        if "url" in changes:
            if changes["url"] is None:
                raise ApiError(422, "invalid_url", "url may not be null", field="url")
            _validate_url(ctx, changes["url"])
        for key in ("event_types", "kota_codes", "recipient_kinds", "enabled"):
            if key in changes and changes[key] is None:
                raise ApiError(422, "validation_error", f"{key} may not be null", field=key)
        now = ctx.clock.now()
        if changes.get("enabled") is True and not doc["enabled"]:
            changes.update(disabled_reason=None, failing_since=None)
        elif changes.get("enabled") is False and doc["enabled"]:
            changes["disabled_reason"] = "disabled by the owner"
        changes["updated_at"] = now
        updated = await ctx.store.endpoints.find_one_and_update(
            {"_id": endpoint_id, "version": doc["version"]},
            {"$set": changes, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            raise ApiError(
                412, "precondition_failed", "the endpoint changed meanwhile; fetch it again", field="If-Match"
            )
        ctx.dispatcher.forget_endpoint(endpoint_id)
        response.headers["ETag"] = etag_for(updated["_id"], updated["version"])
        return endpoint_public(updated)

    @api.delete(
        "/endpoints/{endpoint_id}",
        status_code=204,
        response_class=Response,
        summary="Delete an endpoint (its pending deliveries are dropped)",
    )
    async def delete_endpoint(endpoint_id: str, principal: Staff, ctx: Ctx) -> Response:
        await _endpoint_for(ctx, principal, endpoint_id)
        await ctx.store.endpoints.delete_one({"_id": endpoint_id})
        ctx.dispatcher.forget_endpoint(endpoint_id)
        return Response(status_code=204)

    @api.post(
        "/endpoints/{endpoint_id}/rotate-secret",
        response_model=SecretRotated,
        summary="Issue a new secret; the old one stays valid for the configured overlap",
    )
    async def rotate_secret(endpoint_id: str, principal: Staff, ctx: Ctx) -> SecretRotated:
        doc = await _endpoint_for(ctx, principal, endpoint_id)
        now = ctx.clock.now()
        overlap_until = now + timedelta(hours=ctx.settings.secret_rotation_overlap_hours)
        secret = generate_secret()
        current = doc["secrets"][0]
        kept = [{**current, "valid_until": overlap_until}] + [
            s for s in doc["secrets"][1:] if s.get("valid_until") and s["valid_until"] > now
        ]
        secrets = [
            {
                "sealed": ctx.box.seal(secret),
                "hint": secret_hint(secret),
                "valid_until": None,
                "created_at": now,
            },
            *kept,
        ]
        updated = await ctx.store.endpoints.find_one_and_update(
            {"_id": endpoint_id, "version": doc["version"]},
            {"$set": {"secrets": secrets, "updated_at": now}, "$inc": {"version": 1}},
        )
        if updated is None:
            raise ApiError(409, "concurrent_change", "the endpoint changed meanwhile; try again")
        ctx.dispatcher.forget_endpoint(endpoint_id)
        return SecretRotated(endpoint_id=endpoint_id, secret=secret, previous_secret_valid_until=overlap_until)

    @api.post(
        "/endpoints/{endpoint_id}/test",
        status_code=202,
        response_model=TestEventSent,
        summary="Send a signed test event to the endpoint",
    )
    async def send_test_event(endpoint_id: str, principal: Staff, ctx: Ctx) -> TestEventSent:
        doc = await _endpoint_for(ctx, principal, endpoint_id)
        _require_enabled(doc)
        now = ctx.clock.now()
        message_id = new_id("msg")
        await ctx.store.messages.insert_one(
            {
                "_id": message_id,
                "type": TEST_EVENT_TYPE,
                "timestamp": now,
                "created_at": now,
                "organisation_id": doc.get("organisation_id"),
                "data": {
                    "endpoint_id": endpoint_id,
                    "organisation_id": doc.get("organisation_id"),
                    "message": "Uji webhook KSBB / KSBB webhook test",
                },
            }
        )
        delivery = new_delivery(message_id, doc, TEST_EVENT_TYPE, now)
        await ctx.store.deliveries.insert_one(delivery)
        ctx.dispatcher.wake()
        return TestEventSent(message_id=message_id, delivery_id=delivery["_id"], type=TEST_EVENT_TYPE)

    @api.get(
        "/endpoints/{endpoint_id}/deliveries",
        response_model=DeliveryPage,
        summary="Delivery log of an endpoint, newest first, filtered by status and event type",
    )
    async def list_deliveries(
        endpoint_id: str,
        principal: Staff,
        ctx: Ctx,
        status: Annotated[str | None, Query(pattern="^(pending|succeeded|failed)$")] = None,
        event_type: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> DeliveryPage:
        await _endpoint_for(ctx, principal, endpoint_id)
        query: dict[str, Any] = {"endpoint_id": endpoint_id}
        if status:
            query["status"] = status
        if event_type:
            query["event_type"] = event_type
        if cursor:
            values = decode_cursor(cursor)
            try:
                created = datetime.fromisoformat(values[0])
                last_id = str(values[1])
            except (IndexError, ValueError, TypeError) as exc:
                raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor") from exc
            query["$or"] = [
                {"created_at": {"$lt": created}},
                {"created_at": created, "_id": {"$lt": last_id}},
            ]
        docs = await ctx.store.deliveries.find(query).sort([("created_at", -1), ("_id", -1)]).to_list(limit + 1)
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            next_cursor = encode_cursor([docs[-1]["created_at"].isoformat(), docs[-1]["_id"]])
        return DeliveryPage(items=[delivery_public(d) for d in docs], next_cursor=next_cursor)

    @api.get(
        "/endpoints/{endpoint_id}/deliveries/{delivery_id}",
        response_model=DeliveryPublic,
        summary="One delivery with every attempt",
    )
    async def get_delivery(endpoint_id: str, delivery_id: str, principal: Staff, ctx: Ctx) -> DeliveryPublic:
        await _endpoint_for(ctx, principal, endpoint_id)
        doc = await ctx.store.deliveries.find_one({"_id": delivery_id, "endpoint_id": endpoint_id})
        if doc is None:
            raise ApiError(404, "delivery_not_found", f"no delivery {delivery_id}", field="delivery_id")
        return delivery_public(doc)

    @api.post(
        "/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
        status_code=202,
        response_model=DeliveryPublic,
        summary="Send one message again now (a fresh retry schedule)",
    )
    async def redeliver(endpoint_id: str, delivery_id: str, principal: Staff, ctx: Ctx) -> DeliveryPublic:
        doc = await _endpoint_for(ctx, principal, endpoint_id)
        _require_enabled(doc)
        now = ctx.clock.now()
        updated = await ctx.store.deliveries.find_one_and_update(
            {"_id": delivery_id, "endpoint_id": endpoint_id},
            {"$set": _requeued(now)},
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            raise ApiError(404, "delivery_not_found", f"no delivery {delivery_id}", field="delivery_id")
        ctx.dispatcher.wake()
        return delivery_public(updated)

    @api.post(
        "/endpoints/{endpoint_id}/recover",
        status_code=202,
        response_model=RecoverResult,
        summary="Requeue every failed delivery of messages since a time",
    )
    async def recover(endpoint_id: str, body: RecoverRequest, principal: Staff, ctx: Ctx) -> RecoverResult:
        doc = await _endpoint_for(ctx, principal, endpoint_id)
        _require_enabled(doc)
        now = ctx.clock.now()
        result = await ctx.store.deliveries.update_many(
            {"endpoint_id": endpoint_id, "status": "failed", "created_at": {"$gte": body.since}},
            {"$set": {**_requeued(now), "leased_until": EPOCH}},
        )
        ctx.dispatcher.wake()
        return RecoverResult(requeued=result.modified_count)

    return api


def _requeued(now: datetime) -> dict[str, Any]:
    """Fields that put a delivery back in the queue with a fresh retry schedule, due now."""
    return {"status": "pending", "next_attempt_at": now, "round_attempts": 0, "failure_reason": None, "updated_at": now}
