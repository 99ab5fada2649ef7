"""Programme statistics per area, recipient kind and item, and the areas in a coverage gap."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from ksbb_publisher.api.caching import cached_json
from ksbb_publisher.api.deps import NOT_MODIFIED, ClockDep, QueriesDep, SettingsDep
from ksbb_publisher.api.models import CoverageGapsOut, StatsOut

router = APIRouter(prefix="/v1/public", tags=["public"])


@router.get(
    "/stats",
    response_model=StatsOut,
    responses=NOT_MODIFIED,
    summary="Statistics by kota, kecamatan, kelurahan, recipient kind and item",
)
async def stats(request: Request, queries: QueriesDep, settings: SettingsDep) -> Response:
    found = StatsOut.model_validate(await queries.stats())
    return cached_json(request, found.model_dump(mode="json"), settings.cache_max_age_seconds)


@router.get(
    "/coverage-gaps",
    response_model=CoverageGapsOut,
    responses=NOT_MODIFIED,
    summary="Areas and recipients with open needs and no delivery in the last N days",
)
async def coverage_gaps(
    request: Request,
    queries: QueriesDep,
    settings: SettingsDep,
    clock: ClockDep,
    days: Annotated[int | None, Query(ge=1, le=365)] = None,
) -> Response:
    found = await queries.coverage_gaps(clock.now(), days or settings.coverage_gap_days)
    return cached_json(
        request, CoverageGapsOut.model_validate(found).model_dump(mode="json"), settings.cache_max_age_seconds
    )
