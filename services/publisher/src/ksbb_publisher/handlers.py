"""Event handlers of the publisher service: every public event feeds the read models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ksbb_contracts import EVENT_TYPES, CloudEvent, Event
from ksbb_contracts.topics import topics_consumed_by
from ksbb_kit.consumer import EventRouter

Apply = Callable[[Event, CloudEvent], Awaitable[None]]


def public_event_types() -> list[type[Event]]:
    """Every event type on a topic the publisher consumes; confidential topics are refused outright."""
    topics = topics_consumed_by("publisher")
    if any(t.confidential for t in topics):
        raise RuntimeError("the publisher must never consume a confidential topic")
    names = {t.name for t in topics}
    return [cls for cls in EVENT_TYPES.values() if cls.topic.name in names]


def build_router(apply: Apply) -> EventRouter:
    """The publisher service's event routes: one projection entry point for all public events."""
    router = EventRouter("publisher")

    @router.on(*public_event_types())
    async def project(event: Event, envelope: CloudEvent) -> None:
        await apply(event, envelope)

    return router
