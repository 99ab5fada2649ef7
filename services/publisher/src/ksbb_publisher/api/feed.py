"""The activity feed: pages newest first, and the live stream as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

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
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`id:` is the entry's insertion sequence `seq`; `: heartbeat` comments keep it open",
        }
    },
)
async def stream(
    feed_stream: FeedStreamDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[str | None, Query(description="`seq` (SSE id) to resume after, like Last-Event-ID")] = None,
) -> StreamingResponse:
    return StreamingResponse(
        await feed_stream.open(last_event_id or after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
