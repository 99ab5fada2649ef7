"""HTTP helpers shared by the services: request context and access log, ETags, cursors, idempotency keys."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_kit.clock import Clock
from ksbb_kit.errors import ApiError
from ksbb_kit.tracing import accept_request_id, child_of, set_request_id, set_traceparent

#: One line per handled request (method, path, route template, status, duration, client address).
ACCESS_LOG = logging.getLogger("ksbb.access")


def enter_request_context(headers: Mapping[str, str]) -> str:
    """Adopt the caller's `X-Request-ID` (or make one) and continue its `traceparent`; returns the request id.

    Both usually come from the gateway; a malformed value is replaced, never trusted into logs.
    """
    request_id = accept_request_id(headers.get("x-request-id"))
    set_request_id(request_id)
    set_traceparent(child_of(headers.get("traceparent")))
    return request_id


def route_path(scope: Mapping[str, Any]) -> str:
    """The request path as the service routes it: without the `root_path` uvicorn puts in front."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", "") or "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


def route_template(scope: Mapping[str, Any]) -> str:
    """The matched operation's full path template (`/v1/needs/{need_id}`), or "unmatched".

    FastAPI records the route of the router it was declared on (`/needs/{need_id}` under an included
    `/v1` router); the include prefixes are the leading segments of the concrete path the template does
    not cover.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return "unmatched"
    if ":path}" in template:
        return template
    segments = route_path(scope).split("/")
    depth = template.count("/")
    prefix = "/".join(segments[: max(len(segments) - depth, 0)])
    return prefix + template


def log_access(
    service: str, method: str, path: str, route: str, status: int, seconds: float, client: str | None
) -> None:
    """Write the access line of one request; the request id and trace id come from the request context.

    `client` is the address uvicorn reports: the real client only when the peer is a trusted proxy.
    """
    ACCESS_LOG.info(
        "%s %s %d %.1fms", method, path, status, seconds * 1000,
        extra={"service": service, "http": {
            "method": method, "path": path, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 3), "client": client,
        }},
    )


def etag_for(resource_id: str, version: int) -> str:
    """A strong ETag from a resource's id and version."""
    return f'"{hashlib.sha1(f"{resource_id}:{version}".encode()).hexdigest()[:20]}"'


def check_if_match(if_match: str | None, resource_id: str, version: int) -> None:
    """412 when the client's If-Match names another version; no header means unconditional."""
    if if_match is None:
        return
    current = etag_for(resource_id, version)
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in candidates and current not in candidates:
        raise ApiError(412, "precondition_failed", "the resource changed since you read it; fetch it again",
                       field="If-Match", details={"current_etag": current})


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor from the sort values of the last item."""
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The sort values inside a cursor; 422 if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor") from exc
    if not isinstance(values, list):
        raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor")
    return values


def fingerprint(payload: Any) -> str:
    """A stable hash of a request body, to spot an idempotency key reused for another request."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyStore:
    """Remembers the response to each (caller, operation, Idempotency-Key); swept after a retention period.

    Creates also use ids derived from the key, so a crash between the create and `remember` still
    cannot create twice: the retried create hits the same id.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]], clock: Clock, retention: timedelta) -> None:
        self._collection = db["idempotency_keys"]
        self._clock = clock
        self._retention = retention

    @staticmethod
    def _id(caller: str, operation: str, key: str) -> str:
        return hashlib.sha256(f"{caller}\x1f{operation}\x1f{key}".encode()).hexdigest()

    async def recall(self, caller: str, operation: str, key: str, request_hash: str) -> dict[str, Any] | None:
        """The stored response for a retried request, or None; 422 if the key was used for another body."""
        stored = await self._collection.find_one({"_id": self._id(caller, operation, key)})
        if stored is None:
            return None
        if stored["request_hash"] != request_hash:
            raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request",
                           field="Idempotency-Key")
        return {"status": stored["status"], "body": stored["body"]}

    async def remember(
        self, caller: str, operation: str, key: str, request_hash: str, status: int, body: Any
    ) -> None:
        """Store the response of the first request with this key."""
        try:
            await self._collection.insert_one({
                "_id": self._id(caller, operation, key), "request_hash": request_hash,
                "status": status, "body": body, "created_at": self._clock.now(),
            })
        except DuplicateKeyError:
            pass

    async def sweep(self) -> int:
        """Forget keys older than the retention period (no TTL indexes on the CI server)."""
        cutoff: datetime = self._clock.now() - self._retention
        result = await self._collection.delete_many({"created_at": {"$lt": cutoff}})
        return result.deleted_count
