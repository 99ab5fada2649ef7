"""Event handlers of the registry service: how it reacts to other services' events."""

from __future__ import annotations

from ksbb_kit.consumer import EventRouter


def build_router() -> EventRouter:
    """The registry service's event routes."""
    router = EventRouter("registry")
    return router
