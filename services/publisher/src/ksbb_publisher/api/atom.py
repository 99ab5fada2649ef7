"""The activity feed as an Atom 1.0 document (no personal data: donor names only if opted in)."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response

from ksbb_publisher.api.caching import cached
from ksbb_publisher.api.deps import NOT_MODIFIED, QueriesDep, SettingsDep
from ksbb_publisher.domain.feed import describe

router = APIRouter(prefix="/v1/public", tags=["public"])


def atom_feed(entries: list[dict[str, Any]], base_url: str) -> bytes:
    """An Atom 1.0 document of public feed entries, newest first."""
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


@router.get(
    "/feed.atom",
    summary="Atom feed of the activity",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}}, **NOT_MODIFIED},
)
async def atom(request: Request, queries: QueriesDep, settings: SettingsDep) -> Response:
    items, _ = await queries.feed(limit=50)
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return cached(request, atom_feed(items, base), "application/atom+xml", settings.cache_max_age_seconds)
