"""The activity feed: pages newest first, and the live stream as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from ksbb_contracts import limits
from ksbb_kit.errors import ErrorBody

from ksbb_publisher.api.caching import cached_json
from ksbb_publisher.api.deps import (
    NOT_MODIFIED,
    FeedStreamDep,
    PageLimit,
    QueriesDep,
    SettingsDep,
    after_cursor,
    page_cursor,
)
from ksbb_publisher.api.models import FeedPage

router = APIRouter(prefix="/v1/public", tags=["public"])

#: What the live stream sends and when it refuses (the route's description).
STREAM_RULES = (
    "Server-Sent Events: `event: feed` per entry, with `id:` its insertion sequence `seq`; `: heartbeat` "
    "comments keep it open. Resume with `Last-Event-ID` (or `?after=`): a feed `seq` (ASCII digits, below "
    "2^63) or an entry's feed cursor; anything else is refused with 422 before the stream starts. A resume "
    "more than the configured replay limit behind (1,000 entries by default) is not replayed: the stream "
    "starts with `event: reset` (reload `/v1/public/feed`, then resume from the reset's `id`). Each client "
    "address holds a few streams at once (429 beyond, with Retry-After), each replica a bounded number in "
    "total (503 with Retry-After)."
)


@router.get(
    "/feed",
    response_model=FeedPage,
    responses=NOT_MODIFIED,
    summary="Activity feed, newest first (cursor pagination)",
)
async def feed(
    request: Request,
    queries: QueriesDep,
    settings: SettingsDep,
    cursor: str | None = None,
    recipient_id: str | None = None,
    limit: PageLimit = 50,
) -> Response:
    items, last = await queries.feed(before=after_cursor(cursor), limit=limit, recipient_id=recipient_id)
    page = FeedPage.model_validate({"items": items, "next_cursor": page_cursor(last)})
    return cached_json(request, page.model_dump(mode="json"), settings.cache_max_age_seconds)


@router.get(
    "/feed/stream",
    summary="Live activity feed (Server-Sent Events, resumable with Last-Event-ID)",
    description=STREAM_RULES,
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`id:` is the entry's insertion sequence `seq`; `: heartbeat` comments keep it open; "
            "`event: reset` asks the client to reload",
        },
        422: {"model": ErrorBody, "description": "Last-Event-ID or `after` is not a feed position"},
        429: {"model": ErrorBody, "description": "Too many live streams from this client address"},
        503: {"model": ErrorBody, "description": "The replica holds as many live streams as it may"},
    },
)
async def stream(
    request: Request,
    feed_stream: FeedStreamDep,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=limits.STREAM_CURSOR_MAX)
    ] = None,
    after: Annotated[
        str | None,
        Query(max_length=limits.STREAM_CURSOR_MAX, description="`seq` (SSE id) to resume after, like Last-Event-ID"),
    ] = None,
) -> StreamingResponse:
    field = "Last-Event-ID" if last_event_id else "after"
    client = request.client.host if request.client else "unknown"
    return StreamingResponse(
        await feed_stream.open(last_event_id or after, field=field, client=client),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
