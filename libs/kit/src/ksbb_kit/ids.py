"""Identifiers: prefixed, time-ordered, and deterministic ones for idempotency."""

from __future__ import annotations

import hashlib
import os
import time


def new_id(prefix: str) -> str:
    """A new time-ordered id such as `rcp_0193a5c4e1f2_9b1c2d3e4f5a6b7c`."""
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(8).hex()}"


def derived_id(prefix: str, *parts: str) -> str:
    """A deterministic id from its parts (same parts, same id): for idempotent creates."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:28]
    return f"{prefix}_{digest}"
