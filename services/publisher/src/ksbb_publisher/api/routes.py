"""HTTP routes of the publisher service: the public API (no login), SSE stream, Atom feed and open data."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from ksbb_contracts.areas import areas
from ksbb_contracts.vocab import Item, NeedStatus, RecipientKind, RecipientStatus
from ksbb_kit.errors import ApiError
from ksbb_kit.http import decode_cursor, encode_cursor

from ksbb_publisher.adapters.queries import data_revision
from ksbb_publisher.adapters.snapshots import export_stream
from ksbb_publisher.adapters.stream import sse_frame
from ksbb_publisher.api.caching import cached, cached_json
from ksbb_publisher.api.models import (
    CoverageGapsOut,
    FeedPage,
    NeedOut,
    NeedPage,
    OrganisationOut,
    RecipientDetailOut,
    RecipientPage,
    SnapshotList,
    StatsOut,
)
from ksbb_publisher.components import Components
from ksbb_publisher.domain.feed import describe
from ksbb_publisher.domain.opendata import ATTRIBUTION, DATASETS, FORMATS

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (If-None-Match matched the ETag)"}
}


class DatasetName(StrEnum):
    """Open-data tables."""

    RECIPIENTS = "recipients"
    NEEDS = "needs"
    DELIVERIES = "deliveries"


class ExportFormat(StrEnum):
    """Open-data formats."""

    CSV = "csv"
    JSON = "json"


def _area_code(value: str | None, level: str, field: str) -> str | None:
    if value is None or value == "":
        return None
    area = areas().get(value)
    if area is None or area.level != level:
        raise ApiError(422, "unknown_area", f"{value!r} is not a known {level} code", field=field)
    return value


def _after(cursor: str | None) -> str | None:
    if not cursor:
        return None
    values = decode_cursor(cursor)
    if len(values) != 1 or not isinstance(values[0], str):
        raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor")
    return values[0]


def _page_cursor(last: str | None) -> str | None:
    return encode_cursor([last]) if last else None


def snapshot_view(meta: dict[str, Any]) -> dict[str, Any]:
    """Public metadata of one snapshot with download links."""
    return {
        "snapshot_id": meta["_id"],
        "taken_at": meta["taken_at"],
        "files": [
            {**f, "url": f"/v1/public/exports/snapshots/{meta['_id']}/{f['name']}"} for f in meta["files"]
        ],
    }


def atom_feed(entries: list[dict[str, Any]], base_url: str) -> bytes:
    """An Atom 1.0 document of feed entries (no personal data: donor names only if opted in)."""
    updated = entries[0]["occurred_at"].isoformat() if entries else "1970-01-01T00:00:00+00:00"
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="id">',
        "<title>KSBB — Aktivitas bantuan</title>",
        f"<id>{escape(base_url)}/v1/public/feed.atom</id>",
        f'<link rel="self" href="{escape(base_url)}/v1/public/feed.atom"/>',
        f'<link rel="alternate" href="{escape(base_url)}/"/>',
        f"<updated>{updated}</updated>",
        "<author><name>KSBB Platform</name></author>",
    ]
    for e in entries:
        parts += [
            "<entry>",
            f"<id>urn:ksbb:feed:{escape(e['id'])}</id>",
            f"<title>{escape(describe(e))}</title>",
            f"<updated>{e['occurred_at'].isoformat()}</updated>",
            f'<link href="{escape(base_url)}/v1/public/recipients/{escape(e["recipient_id"])}"/>',
            f"<summary>{escape(describe(e, 'en'))}</summary>",
            "</entry>",
        ]
    parts.append("</feed>")
    return "\n".join(parts).encode()


def build_api(parts: Components) -> APIRouter:
    """The publisher service's public /v1 routes."""
    router = APIRouter(prefix="/v1/public", tags=["public"])
    queries = parts.queries
    max_age = parts.settings.cache_max_age_seconds

    @router.get(
        "/recipients",
        response_model=RecipientPage,
        responses=NOT_MODIFIED,
        summary="Public recipient units, filterable by area, kind and open needs",
    )
    async def list_recipients(
        request: Request,
        kota: Annotated[str | None, Query(description="Kemendagri kota code, e.g. 31.71")] = None,
        kecamatan: Annotated[
            str | None, Query(description="Kemendagri kecamatan code, e.g. 31.71.01")
        ] = None,
        kelurahan: Annotated[str | None, Query(description="Kemendagri kelurahan code")] = None,
        kind: RecipientKind | None = None,
        status: RecipientStatus | None = None,
        has_open_needs: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ) -> Response:
        if status == RecipientStatus.REGISTERED:
            raise ApiError(422, "not_public", "unverified registrations are not published", field="status")
        items, last = await queries.recipients(
            kota=_area_code(kota, "kota", "kota"),
            kecamatan=_area_code(kecamatan, "kecamatan", "kecamatan"),
            kelurahan=_area_code(kelurahan, "kelurahan", "kelurahan"),
            kind=kind.value if kind else None,
            has_open_needs=has_open_needs,
            status=status.value if status else None,
            after=_after(cursor),
            limit=limit,
        )
        page = RecipientPage.model_validate({"items": items, "next_cursor": _page_cursor(last)})
        return cached_json(request, page.model_dump(mode="json"), max_age)

    @router.get(
        "/recipients/{recipient_id}",
        response_model=RecipientDetailOut,
        responses=NOT_MODIFIED,
        summary="One recipient with its needs",
    )
    async def get_recipient(request: Request, recipient_id: str) -> Response:
        found = await queries.recipient(recipient_id)
        if found is None:
            raise ApiError(404, "not_found", "no public recipient with this id", field="recipient_id")
        return cached_json(request, RecipientDetailOut.model_validate(found).model_dump(mode="json"), max_age)

    @router.get(
        "/needs", response_model=NeedPage, responses=NOT_MODIFIED, summary="Needs with their progress"
    )
    async def list_needs(
        request: Request,
        recipient_id: str | None = None,
        status: NeedStatus | None = None,
        item: Item | None = None,
        kota: str | None = None,
        kecamatan: str | None = None,
        kelurahan: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ) -> Response:
        items, last = await queries.needs(
            recipient_id=recipient_id,
            status=status.value if status else None,
            item=item.value if item else None,
            kota=_area_code(kota, "kota", "kota"),
            kecamatan=_area_code(kecamatan, "kecamatan", "kecamatan"),
            kelurahan=_area_code(kelurahan, "kelurahan", "kelurahan"),
            after=_after(cursor),
            limit=limit,
        )
        page = NeedPage.model_validate({"items": items, "next_cursor": _page_cursor(last)})
        return cached_json(request, page.model_dump(mode="json"), max_age)

    @router.get("/needs/{need_id}", response_model=NeedOut, responses=NOT_MODIFIED, summary="One need")
    async def get_need(request: Request, need_id: str) -> Response:
        found = await queries.need(need_id)
        if found is None:
            raise ApiError(404, "not_found", "no public need with this id", field="need_id")
        return cached_json(request, NeedOut.model_validate(found).model_dump(mode="json"), max_age)

    @router.get(
        "/organisations",
        response_model=list[OrganisationOut],
        responses=NOT_MODIFIED,
        summary="Facilitator organisations",
    )
    async def list_organisations(request: Request) -> Response:
        rows = [
            OrganisationOut.model_validate(o).model_dump(mode="json") for o in await queries.organisations()
        ]
        return cached_json(request, rows, max_age)

    @router.get(
        "/feed",
        response_model=FeedPage,
        responses=NOT_MODIFIED,
        summary="Activity feed, newest first (cursor pagination)",
    )
    async def feed(
        request: Request,
        cursor: str | None = None,
        recipient_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Response:
        items, last = await queries.feed(before=_after(cursor), limit=limit, recipient_id=recipient_id)
        page = FeedPage.model_validate({"items": items, "next_cursor": _page_cursor(last)})
        return cached_json(request, page.model_dump(mode="json"), max_age)

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
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        after: Annotated[
            str | None, Query(description="`seq` (SSE id) to resume after, like Last-Event-ID")
        ] = None,
    ) -> StreamingResponse:
        subscriber = parts.broadcaster.subscribe()
        heartbeat = parts.settings.sse_heartbeat_seconds
        resume_from = last_event_id or after
        # Subscribe first, then fix the starting point: nothing projected in between can be missed.
        try:
            resumed = await queries.resume_point(resume_from) if resume_from else None
            last: int = resumed if resumed is not None else await queries.latest_feed_seq()
        except BaseException:
            parts.broadcaster.unsubscribe(subscriber)
            raise

        async def stored(after_seq: int, upto: int | None) -> list[tuple[int, str]]:
            docs = await queries.feed_after(after_seq, 500, upto=upto)
            return [(e["seq"], sse_frame(e)) for e in await queries.render_feed(docs)]

        async def events() -> AsyncIterator[str]:
            # `last` is a watermark: every entry with seq <= last was sent, none above it. Frames go out
            # strictly in seq order, so the client's Last-Event-ID is always a safe point to resume from.
            nonlocal last
            try:
                yield "retry: 3000\n\n"
                while frames := await stored(last, None):
                    for seq, frame in frames:
                        yield frame
                        last = seq
                while True:
                    if subscriber.dropped.is_set() and subscriber.queue.empty():
                        return  # too slow: end the stream; the client resumes with Last-Event-ID
                    try:
                        seq, frame = await asyncio.wait_for(subscriber.queue.get(), timeout=heartbeat)
                    except TimeoutError:
                        yield ": heartbeat\n\n"
                        continue
                    if seq <= last:
                        continue  # replayed already
                    # Announced out of order (another replica's entry not polled yet): fill from MongoDB.
                    while seq > last + 1 and (frames := await stored(last, seq - 1)):
                        for stored_seq, stored_frame in frames:
                            yield stored_frame
                            last = stored_seq
                    yield frame
                    last = seq
            finally:
                parts.broadcaster.unsubscribe(subscriber)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get(
        "/feed.atom",
        summary="Atom feed of the activity",
        response_class=Response,
        responses={200: {"content": {"application/atom+xml": {}}}, **NOT_MODIFIED},
    )
    async def atom(request: Request) -> Response:
        items, _ = await queries.feed(limit=50)
        base = (parts.settings.public_url or str(request.base_url)).rstrip("/")
        return cached(request, atom_feed(items, base), "application/atom+xml", max_age)

    @router.get(
        "/stats",
        response_model=StatsOut,
        responses=NOT_MODIFIED,
        summary="Statistics by kota, kecamatan, kelurahan, recipient kind and item",
    )
    async def stats(request: Request) -> Response:
        return cached_json(
            request, StatsOut.model_validate(await queries.stats()).model_dump(mode="json"), max_age
        )

    @router.get(
        "/coverage-gaps",
        response_model=CoverageGapsOut,
        responses=NOT_MODIFIED,
        summary="Areas and recipients with open needs and no delivery in the last N days",
    )
    async def coverage_gaps(
        request: Request,
        days: Annotated[int | None, Query(ge=1, le=365)] = None,
    ) -> Response:
        found = await queries.coverage_gaps(parts.clock.now(), days or parts.settings.coverage_gap_days)
        return cached_json(request, CoverageGapsOut.model_validate(found).model_dump(mode="json"), max_age)

    @router.get(
        "/exports/snapshots",
        response_model=SnapshotList,
        responses=NOT_MODIFIED,
        summary="Daily open-data snapshots with SHA-256 checksums (HTML for browsers, else JSON)",
    )
    async def snapshots(
        request: Request,
        format: Annotated[str | None, Query(pattern="^(json|html)$")] = None,
    ) -> Response:
        listing = SnapshotList.model_validate(
            {
                "attribution": ATTRIBUTION,
                "live_exports": [f"/v1/public/exports/{d}.{f}" for d in DATASETS for f in FORMATS],
                "snapshots": [snapshot_view(m) for m in await parts.snapshots.list()],
            }
        ).model_dump(mode="json")
        wants_html = format == "html" or (format is None and "text/html" in request.headers.get("accept", ""))
        if not wants_html:
            return cached_json(request, listing, max_age)
        from ksbb_publisher.web.pages import render_snapshots

        return cached(
            request, render_snapshots(request, listing).encode(), "text/html; charset=utf-8", max_age
        )

    @router.get(
        "/exports/snapshots/{snapshot_id}/{file_name}",
        summary="Download one snapshot file",
        response_class=StreamingResponse,
    )
    async def snapshot_file(request: Request, snapshot_id: str, file_name: str) -> Response:
        meta = await parts.snapshots.get(snapshot_id)
        found = next((f for f in (meta or {}).get("files", []) if f["name"] == file_name), None)
        if meta is None or found is None:
            raise ApiError(404, "not_found", "no such snapshot file", field="file_name")
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
        return StreamingResponse(
            parts.snapshots.read(snapshot_id, file_name), media_type=media, headers=headers
        )

    @router.get(
        "/exports/{dataset}.{fmt}",
        summary="Open data (streamed): CSV with an HXL hashtag row, or HXL JSON",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}, "application/json": {}}}, **NOT_MODIFIED},
    )
    async def export(request: Request, dataset: DatasetName, fmt: ExportFormat) -> Response:
        revision = await data_revision(parts.projector.db)
        etag = '"' + hashlib.sha256(f"{dataset}.{fmt}:{revision}".encode()).hexdigest()[:32] + '"'
        headers = {
            "ETag": etag,
            "Cache-Control": f"public, max-age={max_age}",
            "Content-Disposition": f'inline; filename="ksbb-{dataset.value}.{fmt.value}"',
            "Link": '<https://opendatacommons.org/licenses/odbl/1-0/>; rel="license"',
        }
        if request.headers.get("if-none-match", "").find(etag) >= 0:
            return Response(status_code=304, headers=headers)
        media = "text/csv; charset=utf-8" if fmt == ExportFormat.CSV else "application/json"
        return StreamingResponse(
            export_stream(queries, dataset.value, fmt.value), media_type=media, headers=headers
        )

    return router
