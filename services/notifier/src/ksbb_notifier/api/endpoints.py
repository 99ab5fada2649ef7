"""Routes of webhook endpoints: register, list, read, change, delete, rotate the signing secret."""

# Route functions carry no docstring on purpose: FastAPI would publish it as the operation's
# description and change the OpenAPI document; each route's `summary` says what it does.

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from ksbb_kit.errors import ERROR_RESPONSES
from ksbb_kit.http import check_if_match, etag_for

from ksbb_notifier.api.deps import EndpointsDep, Staff
from ksbb_notifier.api.models import (
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointPublic,
    EndpointUpdate,
    SecretRotated,
    endpoint_public,
)
from ksbb_notifier.app.endpoints import NewEndpoint

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


@router.post(
    "/endpoints",
    status_code=201,
    response_model=EndpointCreated,
    summary="Register a webhook endpoint (the secret is returned only here)",
)
async def create_endpoint(
    body: EndpointCreate, principal: Staff, endpoints: EndpointsDep, response: Response
) -> EndpointCreated:
    registered = await endpoints.register(
        principal,
        NewEndpoint(
            url=body.url,
            organisation_id=body.organisation_id,
            description=body.description,
            event_types=tuple(body.event_types),
            kota_codes=tuple(body.kota_codes),
            recipient_kinds=tuple(k.value for k in body.recipient_kinds),
            rate_limit_per_second=body.rate_limit_per_second,
        ),
    )
    endpoint = registered.endpoint
    response.headers["ETag"] = etag_for(endpoint.id, endpoint.version)
    response.headers["Location"] = f"/v1/webhooks/endpoints/{endpoint.id}"
    return EndpointCreated(**endpoint_public(endpoint).model_dump(), secret=registered.secret)


@router.get("/endpoints", response_model=EndpointList, summary="List the endpoints the caller may manage")
async def list_endpoints(
    principal: Staff,
    endpoints: EndpointsDep,
    organisation_id: Annotated[str | None, Query(max_length=100)] = None,
) -> EndpointList:
    return EndpointList(items=[endpoint_public(e) for e in await endpoints.visible_to(principal, organisation_id)])


@router.get("/endpoints/{endpoint_id}", response_model=EndpointPublic, summary="One endpoint")
async def get_endpoint(
    endpoint_id: str, principal: Staff, endpoints: EndpointsDep, response: Response
) -> EndpointPublic:
    endpoint = await endpoints.get(principal, endpoint_id)
    response.headers["ETag"] = etag_for(endpoint.id, endpoint.version)
    return endpoint_public(endpoint)


@router.patch(
    "/endpoints/{endpoint_id}",
    response_model=EndpointPublic,
    summary="Change an endpoint (URL, filters, rate limit, enable/disable)",
)
async def update_endpoint(
    endpoint_id: str,
    body: EndpointUpdate,
    principal: Staff,
    endpoints: EndpointsDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> EndpointPublic:
    endpoint = await endpoints.get(principal, endpoint_id)
    check_if_match(if_match, endpoint.id, endpoint.version)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, mode="json")
    updated = await endpoints.update(endpoint, changes)
    response.headers["ETag"] = etag_for(updated.id, updated.version)
    return endpoint_public(updated)


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an endpoint (its pending deliveries are dropped)",
)
async def delete_endpoint(endpoint_id: str, principal: Staff, endpoints: EndpointsDep) -> Response:
    await endpoints.delete(principal, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    summary="Issue a new secret; the old one stays valid for the configured overlap",
)
async def rotate_secret(endpoint_id: str, principal: Staff, endpoints: EndpointsDep) -> SecretRotated:
    rotated = await endpoints.rotate_secret(principal, endpoint_id)
    return SecretRotated(
        endpoint_id=rotated.endpoint_id,
        secret=rotated.secret,
        previous_secret_valid_until=rotated.previous_secret_valid_until,
    )
