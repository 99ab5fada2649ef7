"""Public needs with their progress: a filterable, paged list and one need."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from ksbb_contracts.vocab import Item, NeedStatus, Priority, RecipientKind

from ksbb_publisher.api.caching import cached_json
from ksbb_publisher.api.deps import NOT_MODIFIED, PageLimit, QueriesDep, SettingsDep, after_cursor, page_cursor
from ksbb_publisher.api.models import NeedOut, NeedPage
from ksbb_publisher.domain.areas import checked_area_code

router = APIRouter(prefix="/v1/public", tags=["public"])


@router.get(
    "/needs",
    response_model=NeedPage,
    responses=NOT_MODIFIED,
    summary="Needs with their progress",
    description=(
        "Needs of published recipients ordered by id. A page may hold fewer than `limit` needs (even none) "
        "while `next_cursor` is set: one page reads a bounded part of the needs, so keep following "
        "`next_cursor` until it is null."
    ),
)
async def list_needs(
    request: Request,
    queries: QueriesDep,
    settings: SettingsDep,
    recipient_id: str | None = None,
    status: NeedStatus | None = None,
    item: Item | None = None,
    kota: str | None = None,
    kecamatan: str | None = None,
    kelurahan: str | None = None,
    kind: Annotated[RecipientKind | None, Query(description="Kind of the recipient unit")] = None,
    priority: Annotated[Priority | None, Query(description="Urgency of the need")] = None,
    limit: PageLimit = 50,
    cursor: str | None = None,
) -> Response:
    items, last = await queries.needs(
        recipient_id=recipient_id,
        status=status.value if status else None,
        item=item.value if item else None,
        kota=checked_area_code(kota, "kota", "kota"),
        kecamatan=checked_area_code(kecamatan, "kecamatan", "kecamatan"),
        kelurahan=checked_area_code(kelurahan, "kelurahan", "kelurahan"),
        kind=kind.value if kind else None,
        priority=priority.value if priority else None,
        after=after_cursor(cursor),
        limit=limit,
    )
    page = NeedPage.model_validate({"items": items, "next_cursor": page_cursor(last)})
    return cached_json(request, page.model_dump(mode="json"), settings.cache_max_age_seconds)


@router.get("/needs/{need_id}", response_model=NeedOut, responses=NOT_MODIFIED, summary="One need")
async def get_need(request: Request, queries: QueriesDep, settings: SettingsDep, need_id: str) -> Response:
    found = NeedOut.model_validate(await queries.need(need_id))
    return cached_json(request, found.model_dump(mode="json"), settings.cache_max_age_seconds)
