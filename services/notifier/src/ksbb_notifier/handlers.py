"""Event handlers of the notifier service: how it reacts to other services' events."""

from __future__ import annotations

from ksbb_kit.consumer import EventRouter


def build_router() -> EventRouter:
    """The notifier service's event routes."""
    router = EventRouter("notifier")
    return router
