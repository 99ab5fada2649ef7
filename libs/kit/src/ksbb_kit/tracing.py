"""Request context: the W3C `traceparent` and the `X-Request-ID` of the work in progress.

Both arrive on HTTP requests (usually set by the gateway), travel in event envelopes (`traceparent`
and the CloudEvents extension attribute `requestid`) and are continued by consumers, so every log
line and every event of one user action can be found by either id.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

_TRACEPARENT: ContextVar[str | None] = ContextVar("traceparent", default=None)
_REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# Version 00; an all-zero trace id or parent id is invalid (W3C Trace Context, section 3.2.2).
_PATTERN = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
# Request ids are echoed into logs and headers: short, printable, no separators that could forge fields.
_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

#: HTTP header carrying the request id (accepted from the client or the gateway, echoed in the response).
REQUEST_ID_HEADER = "X-Request-ID"
#: CloudEvents extension attribute carrying the request id of the action that caused an event.
REQUEST_ID_ATTRIBUTE = "requestid"


def new_traceparent() -> str:
    """A fresh sampled trace context."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def child_of(parent: str | None) -> str:
    """A new span id in the parent's trace (or a new trace when the parent is missing or malformed)."""
    if parent and _PATTERN.match(parent):
        return f"00-{parent[3:35]}-{os.urandom(8).hex()}-{parent[-2:]}"
    return new_traceparent()


def current_traceparent() -> str | None:
    """The trace context of the work in progress."""
    return _TRACEPARENT.get()


def set_traceparent(value: str | None) -> None:
    """Enter a trace context for the current task."""
    _TRACEPARENT.set(value)


def trace_id(traceparent: str | None) -> str | None:
    """The trace id part, for logs."""
    return traceparent[3:35] if traceparent and _PATTERN.match(traceparent) else None


def new_request_id() -> str:
    """A fresh request id (32 hex digits, the same shape nginx's `$request_id` has)."""
    return os.urandom(16).hex()


def valid_request_id(value: str | None) -> str | None:
    """The value if it is an acceptable request id, else None."""
    return value if value and _REQUEST_ID_PATTERN.match(value) else None


def accept_request_id(value: str | None) -> str:
    """The caller's request id when it is well-formed, otherwise a new one."""
    return valid_request_id(value) or new_request_id()


def current_request_id() -> str | None:
    """The request id of the work in progress."""
    return _REQUEST_ID.get()


def set_request_id(value: str | None) -> None:
    """Enter a request id for the current task."""
    _REQUEST_ID.set(value)


def request_id_extension() -> dict[str, str]:
    """The CloudEvents extension attribute for the current request id (empty outside a request)."""
    request_id = current_request_id()
    return {REQUEST_ID_ATTRIBUTE: request_id} if request_id else {}


def request_id_of(attributes: Mapping[str, Any] | None) -> str | None:
    """The request id in an envelope's extension attributes, if present and well-formed."""
    value = (attributes or {}).get(REQUEST_ID_ATTRIBUTE)
    return valid_request_id(value) if isinstance(value, str) else None
