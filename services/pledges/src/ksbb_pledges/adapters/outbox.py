"""What the stores need to put events into the outbox of the same write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Outbox entries for events, to embed in the write that causes them (the runtime's `events`).
OutboxEntries = Callable[..., list[dict[str, Any]]]
