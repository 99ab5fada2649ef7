"""HTTP caching of public GETs: a strong ETag from the body's hash, Cache-Control, 304 on If-None-Match."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder


def etag_of(body: bytes) -> str:
    """A strong ETag: the SHA-256 of the representation (truncated)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(request: Request, etag: str) -> bool:
    """Whether the client's If-None-Match names this ETag (weak comparison, as RFC 9110 asks)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def cached(
    request: Request, body: bytes, media_type: str, max_age: int, *, etag: str | None = None
) -> Response:
    """A response with ETag and Cache-Control, or 304 Not Modified when the client has it already."""
    tag = etag or etag_of(body)
    headers = {"ETag": tag, "Cache-Control": f"public, max-age={max_age}", "Vary": "Accept"}
    if matches(request, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def cached_json(request: Request, payload: Any, max_age: int) -> Response:
    """JSON response (already validated by a public model) with caching headers."""
    body = json.dumps(jsonable_encoder(payload), ensure_ascii=False, separators=(",", ":")).encode()
    return cached(request, body, "application/json", max_age)
