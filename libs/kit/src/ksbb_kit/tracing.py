"""W3C trace context: one `traceparent` per request or consumed event, carried in Kafka headers."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

_TRACEPARENT: ContextVar[str | None] = ContextVar("traceparent", default=None)
_PATTERN = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


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
