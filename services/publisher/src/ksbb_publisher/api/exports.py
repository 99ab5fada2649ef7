"""Live open data, streamed: CSV with an HXL hashtag row, or HXL JSON, with an ETag of the data's revision."""

from __future__ import annotations

from enum import StrEnum

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from ksbb_publisher.api.deps import NOT_MODIFIED, OpenDataDep, SettingsDep

router = APIRouter(prefix="/v1/public", tags=["public"])


class DatasetName(StrEnum):
    """Open-data tables."""

    RECIPIENTS = "recipients"
    NEEDS = "needs"
    DELIVERIES = "deliveries"


class ExportFormat(StrEnum):
    """Open-data formats."""

    CSV = "csv"
    JSON = "json"


@router.get(
    "/exports/{dataset}.{fmt}",
    summary="Open data (streamed): CSV with an HXL hashtag row, or HXL JSON",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}, **NOT_MODIFIED},
)
async def export(
    request: Request, open_data: OpenDataDep, settings: SettingsDep, dataset: DatasetName, fmt: ExportFormat
) -> Response:
    etag = await open_data.etag(dataset.value, fmt.value)
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={settings.cache_max_age_seconds}",
        "Content-Disposition": f'inline; filename="ksbb-{dataset.value}.{fmt.value}"',
        "Link": '<https://opendatacommons.org/licenses/odbl/1-0/>; rel="license"',
    }
    if request.headers.get("if-none-match", "").find(etag) >= 0:
        return Response(status_code=304, headers=headers)
    media = "text/csv; charset=utf-8" if fmt == ExportFormat.CSV else "application/json"
    return StreamingResponse(open_data.stream(dataset.value, fmt.value), media_type=media, headers=headers)
