"""Daily open-data snapshots: the listing (HTML for browsers, else JSON) and file downloads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from ksbb_publisher.api.caching import cached, cached_json
from ksbb_publisher.api.deps import NOT_MODIFIED, SettingsDep, SnapshotsDep
from ksbb_publisher.api.models import SnapshotList
from ksbb_publisher.api.pages import render_snapshots
from ksbb_publisher.domain.opendata import ATTRIBUTION, DATASETS, FORMATS

router = APIRouter(prefix="/v1/public", tags=["public"])


def snapshot_view(meta: dict[str, Any]) -> dict[str, Any]:
    """Public metadata of one snapshot with download links."""
    return {
        "snapshot_id": meta["_id"],
        "taken_at": meta["taken_at"],
        "files": [
            {**f, "url": f"/v1/public/exports/snapshots/{meta['_id']}/{f['name']}"} for f in meta["files"]
        ],
    }


@router.get(
    "/exports/snapshots",
    response_model=SnapshotList,
    # Browsers (Accept: text/html or ?format=html) get the same listing as a page.
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}, **NOT_MODIFIED},
    summary="Daily open-data snapshots with SHA-256 checksums (HTML for browsers, else JSON)",
)
async def snapshots(
    request: Request,
    archive: SnapshotsDep,
    settings: SettingsDep,
    format: Annotated[str | None, Query(pattern="^(json|html)$")] = None,
) -> Response:
    listing = SnapshotList.model_validate(
        {
            "attribution": ATTRIBUTION,
            "live_exports": [f"/v1/public/exports/{d}.{f}" for d in DATASETS for f in FORMATS],
            "snapshots": [snapshot_view(m) for m in await archive.list()],
        }
    ).model_dump(mode="json")
    max_age = settings.cache_max_age_seconds
    wants_html = format == "html" or (format is None and "text/html" in request.headers.get("accept", ""))
    if not wants_html:
        return cached_json(request, listing, max_age)
    return cached(request, render_snapshots(request, listing).encode(), "text/html; charset=utf-8", max_age)


@router.get(
    "/exports/snapshots/{snapshot_id}/{file_name}",
    summary="Download one snapshot file",
    response_class=StreamingResponse,
)
async def snapshot_file(request: Request, archive: SnapshotsDep, snapshot_id: str, file_name: str) -> Response:
    found = await archive.file(snapshot_id, file_name)
    etag = f'"{found["sha256"][:32]}"'
    media = "text/csv; charset=utf-8" if found["format"] == "csv" else "application/json"
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=86400, immutable",
        "Digest": f"sha-256={found['sha256']}",
        "Content-Disposition": f'attachment; filename="ksbb-{snapshot_id}-{file_name}"',
    }
    if request.headers.get("if-none-match", "").find(etag) >= 0:
        return Response(status_code=304, headers=headers)
    return StreamingResponse(archive.read(snapshot_id, file_name), media_type=media, headers=headers)
