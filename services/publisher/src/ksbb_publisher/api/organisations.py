"""Public facts of the facilitator organisations."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ksbb_publisher.api.caching import cached_json
from ksbb_publisher.api.deps import NOT_MODIFIED, QueriesDep, SettingsDep
from ksbb_publisher.api.models import OrganisationOut

router = APIRouter(prefix="/v1/public", tags=["public"])


@router.get(
    "/organisations",
    response_model=list[OrganisationOut],
    responses=NOT_MODIFIED,
    summary="Facilitator organisations",
)
async def list_organisations(request: Request, queries: QueriesDep, settings: SettingsDep) -> Response:
    rows = [OrganisationOut.model_validate(o).model_dump(mode="json") for o in await queries.organisations()]
    return cached_json(request, rows, settings.cache_max_age_seconds)
