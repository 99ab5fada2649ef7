"""Request body limits in the service itself (defence in depth behind the gateway).

A body larger than the limit is refused with 413 and the project's error body *before* anything reads it:
a declared `Content-Length` is refused before the app runs (so before parsing and before authentication),
and a streamed body is cut off as soon as it passes the limit. The default comes from the settings
(`max_request_body_bytes`, 1 MiB); a route declares another limit with `openapi_extra=max_body_bytes(n)`
(the OpenAPI document then shows it as `x-max-body-bytes`), and an operator may set one per path template
(`max_request_body_routes`, e.g. to match a larger limit configured in the gateway).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ksbb_kit.errors import ErrorBody

#: OpenAPI operation extension carrying a route's own body limit (bytes).
MAX_BODY_EXTENSION = "x-max-body-bytes"
#: The error code of a refused body (the gateway uses the same).
TOO_LARGE = "payload_too_large"


def max_body_bytes(limit: int) -> dict[str, Any]:
    """`openapi_extra` for a route accepting bodies up to `limit` bytes instead of the service's default."""
    if limit < 0:
        raise ValueError("a body limit is a number of bytes")
    return {MAX_BODY_EXTENSION: limit}


class BodyTooLarge(HTTPException):
    """The body passed its limit while being read (rendered as 413 by the kit's error handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_message(limit))
        self.limit = limit


def too_large_message(limit: int) -> str:
    """The 413 message, naming the limit."""
    return f"the request body is larger than {limit} bytes; send less"


def too_large_body(limit: int) -> bytes:
    """The JSON error body of a refused request."""
    body = ErrorBody(code=TOO_LARGE, message=too_large_message(limit), details={"max_body_bytes": limit})
    return json.dumps(body.model_dump(exclude_none=True)).encode()


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join(
        (".+" if part.endswith(":path}") else "[^/]+") if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{regex}$")


class RouteLimits:
    """The limit for a method and path: a route's own (from the OpenAPI document), an operator's, or the default."""

    def __init__(self, default: int, openapi: Callable[[], Mapping[str, Any]],
                 configured: Mapping[str, int] | None = None) -> None:
        self.default = default
        self._openapi = openapi
        self._configured = dict(configured or {})
        self._table: list[tuple[re.Pattern[str], str, int]] | None = None

    def _build(self) -> list[tuple[re.Pattern[str], str, int]]:
        table = []
        for template, operations in (self._openapi().get("paths") or {}).items():
            for method, operation in operations.items():
                if isinstance(operation, dict) and MAX_BODY_EXTENSION in operation:
                    table.append((_template_pattern(template), method.upper(), int(operation[MAX_BODY_EXTENSION])))
        for template, limit in self._configured.items():
            table.insert(0, (_template_pattern(template), "*", int(limit)))  # the operator's word wins
        return table

    def limit_for(self, method: str, path: str) -> int:
        """Bytes a request to this method and path may send."""
        if self._table is None:  # built on first use, once every route is included
            self._table = self._build()
        for pattern, allowed, limit in self._table:
            if allowed in ("*", method) and pattern.match(path):
                return limit
        return self.default


class BodySizeLimit:
    """ASGI middleware refusing request bodies over the route's limit with 413, before the app reads them."""

    def __init__(self, app: ASGIApp, limits: RouteLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length first, then count what arrives."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", "") or "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        limit = self.limits.limit_for(str(scope.get("method", "GET")), path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = too_large_body(limit)
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
