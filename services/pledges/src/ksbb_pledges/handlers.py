"""Event handlers of the pledges service: how it reacts to other services' events."""

from __future__ import annotations

from ksbb_kit.consumer import EventRouter


def build_router() -> EventRouter:
    """The pledges service's event routes."""
    router = EventRouter("pledges")
    return router
