"""Event handlers of the publisher service: how it reacts to other services' events."""

from __future__ import annotations

from ksbb_kit.consumer import EventRouter


def build_router() -> EventRouter:
    """The publisher service's event routes."""
    router = EventRouter("publisher")
    return router
