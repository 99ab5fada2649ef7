"""Routes of deliveries: send a test event, read the delivery log, redeliver one, recover failed ones."""

# Route functions carry no docstring on purpose: FastAPI would publish it as the operation's
# description and change the OpenAPI document; each route's `summary` says what it does.

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from ksbb_contracts import limits
from ksbb_kit.errors import ERROR_RESPONSES, ApiError
from ksbb_kit.http import decode_cursor, encode_cursor

from ksbb_notifier.api.deps import DeliveriesDep, EndpointsDep, Staff
from ksbb_notifier.api.models import (
    DeliveryPage,
    DeliveryPublic,
    RecoverRequest,
    RecoverResult,
    TestEventSent,
    delivery_public,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


def _position(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) of the last delivery a cursor points after."""
    values = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(values[0]), str(values[1])
    except (IndexError, ValueError, TypeError) as exc:
        raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor") from exc


@router.post(
    "/endpoints/{endpoint_id}/test",
    status_code=202,
    response_model=TestEventSent,
    summary="Send a signed test event to the endpoint",
)
async def send_test_event(endpoint_id: str, principal: Staff, deliveries: DeliveriesDep) -> TestEventSent:
    sent = await deliveries.send_test(principal, endpoint_id)
    return TestEventSent(message_id=sent.message_id, delivery_id=sent.delivery_id, type=sent.type)


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    summary="Delivery log of an endpoint, newest first, filtered by status and event type",
)
async def list_deliveries(
    endpoint_id: str,
    principal: Staff,
    endpoints: EndpointsDep,
    deliveries: DeliveriesDep,
    status: Annotated[str | None, Query(pattern="^(pending|succeeded|failed)$")] = None,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=limits.PAGE_SIZE[0], le=limits.PAGE_SIZE[1])] = 50,
    cursor: Annotated[str | None, Query(max_length=limits.CURSOR_MAX)] = None,
) -> DeliveryPage:
    endpoint = await endpoints.get(principal, endpoint_id)
    before = _position(cursor) if cursor else None
    page = await deliveries.page(endpoint, status=status, event_type=event_type, before=before, limit=limit)
    next_cursor = None
    if page.has_more:
        last = page.items[-1]
        next_cursor = encode_cursor([last.created_at.isoformat(), last.id])
    return DeliveryPage(items=[delivery_public(d) for d in page.items], next_cursor=next_cursor)


@router.get(
    "/endpoints/{endpoint_id}/deliveries/{delivery_id}",
    response_model=DeliveryPublic,
    summary="One delivery with every attempt",
)
async def get_delivery(
    endpoint_id: str, delivery_id: str, principal: Staff, deliveries: DeliveriesDep
) -> DeliveryPublic:
    return delivery_public(await deliveries.get(principal, endpoint_id, delivery_id))


@router.post(
    "/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryPublic,
    summary="Send one message again now (a fresh retry schedule)",
)
async def redeliver(endpoint_id: str, delivery_id: str, principal: Staff, deliveries: DeliveriesDep) -> DeliveryPublic:
    return delivery_public(await deliveries.redeliver(principal, endpoint_id, delivery_id))


@router.post(
    "/endpoints/{endpoint_id}/recover",
    status_code=202,
    response_model=RecoverResult,
    summary="Requeue every failed delivery of messages since a time",
)
async def recover(endpoint_id: str, body: RecoverRequest, principal: Staff, deliveries: DeliveriesDep) -> RecoverResult:
    return RecoverResult(requeued=await deliveries.recover(principal, endpoint_id, body.since))
