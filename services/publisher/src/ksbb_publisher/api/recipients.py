"""Public recipient units: a filterable, paged list and one recipient with its needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from ksbb_contracts.vocab import RecipientKind, RecipientStatus

from ksbb_publisher.api.caching import cached_json
from ksbb_publisher.api.deps import NOT_MODIFIED, PageLimit, QueriesDep, SettingsDep, after_cursor, page_cursor
from ksbb_publisher.api.models import RecipientDetailOut, RecipientPage
from ksbb_publisher.domain.areas import checked_area_code
from ksbb_publisher.domain.views import require_public_status

router = APIRouter(prefix="/v1/public", tags=["public"])


@router.get(
    "/recipients",
    response_model=RecipientPage,
    responses=NOT_MODIFIED,
    summary="Public recipient units, filterable by area, kind and open needs",
)
async def list_recipients(
    request: Request,
    queries: QueriesDep,
    settings: SettingsDep,
    kota: Annotated[str | None, Query(description="Kemendagri kota code, e.g. 31.71")] = None,
    kecamatan: Annotated[str | None, Query(description="Kemendagri kecamatan code, e.g. 31.71.01")] = None,
    kelurahan: Annotated[str | None, Query(description="Kemendagri kelurahan code")] = None,
    kind: RecipientKind | None = None,
    status: RecipientStatus | None = None,
    has_open_needs: bool | None = None,
    limit: PageLimit = 50,
    cursor: str | None = None,
) -> Response:
    require_public_status(status.value if status else None)
    items, last = await queries.recipients(
        kota=checked_area_code(kota, "kota", "kota"),
        kecamatan=checked_area_code(kecamatan, "kecamatan", "kecamatan"),
        kelurahan=checked_area_code(kelurahan, "kelurahan", "kelurahan"),
        kind=kind.value if kind else None,
        has_open_needs=has_open_needs,
        status=status.value if status else None,
        after=after_cursor(cursor),
        limit=limit,
    )
    page = RecipientPage.model_validate({"items": items, "next_cursor": page_cursor(last)})
    return cached_json(request, page.model_dump(mode="json"), settings.cache_max_age_seconds)


@router.get(
    "/recipients/{recipient_id}",
    response_model=RecipientDetailOut,
    responses=NOT_MODIFIED,
    summary="One recipient with its needs",
)
async def get_recipient(request: Request, queries: QueriesDep, settings: SettingsDep, recipient_id: str) -> Response:
    found = RecipientDetailOut.model_validate(await queries.recipient(recipient_id))
    return cached_json(request, found.model_dump(mode="json"), settings.cache_max_age_seconds)
