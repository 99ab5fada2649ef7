"""Composition root of the publisher service: wires settings, runtime, projections, stream and routes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from ksbb_contracts import CloudEvent, Event
from ksbb_kit.clock import Clock, SystemClock
from ksbb_kit.runtime import ServiceRuntime

from ksbb_publisher.adapters.projections import Projector
from ksbb_publisher.adapters.queries import ReadQueries
from ksbb_publisher.adapters.snapshots import SnapshotStore
from ksbb_publisher.adapters.stream import FeedBroadcaster, FeedPoller
from ksbb_publisher.api.routes import build_api
from ksbb_publisher.components import Components
from ksbb_publisher.handlers import build_router
from ksbb_publisher.settings import PublisherSettings
from ksbb_publisher.web.pages import STATIC_DIR, build_web

TITLE = "KSBB Publisher"
DESCRIPTION = (
    "Public read models, activity feed, live stream (SSE), open data with HXL and the public web page. "
    "No login; no personal data: contact persons, phone numbers, e-mails and notes never reach this service."
)


def build_components(runtime: ServiceRuntime, settings: PublisherSettings) -> Components:
    """The publisher's collaborators on top of a runtime's database and clock."""
    queries = ReadQueries(runtime.db)
    broadcaster = FeedBroadcaster(queries.render_feed, queue_size=settings.sse_queue_size)

    async def announce(entry: dict[str, Any]) -> None:
        await broadcaster.announce([entry])

    projector = Projector(runtime.db, runtime.clock, on_feed_entry=announce)
    return Components(
        settings=settings,
        clock=runtime.clock,
        projector=projector,
        queries=queries,
        broadcaster=broadcaster,
        poller=FeedPoller(runtime.db, broadcaster),
        snapshots=SnapshotStore(runtime.db, queries, settings.snapshot_chunk_bytes),
    )


def build_runtime(
    settings: PublisherSettings, *, clock: Clock | None = None
) -> tuple[ServiceRuntime, Components]:
    """The service's runtime (Mongo, Kafka, consumers) and its components."""
    holder: dict[str, Components] = {}

    async def apply(event: Event, envelope: CloudEvent) -> None:
        await holder["parts"].projector.apply(event, envelope)

    runtime = ServiceRuntime(
        settings,
        title=TITLE,
        description=DESCRIPTION,
        router=build_router(apply),
        clock=clock or SystemClock(),
    )
    parts = holder["parts"] = build_components(runtime, settings)

    @runtime.on_startup
    async def indexes(_: ServiceRuntime) -> None:
        await parts.projector.ensure_indexes()
        await runtime.db.snapshot_chunks.create_index([("snapshot", 1), ("file", 1), ("n", 1)])

    @runtime.every(settings.feed_poll_seconds, "feed-poll")
    async def poll(_: ServiceRuntime) -> None:
        await parts.poller.poll()

    @runtime.every(settings.snapshot_interval_seconds, "open-data-snapshot")
    async def snapshot(_: ServiceRuntime) -> None:
        await parts.snapshots.take(runtime.clock.now())

    return runtime, parts


def create_app(settings: PublisherSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service's FastAPI application."""
    runtime, parts = build_runtime(settings or PublisherSettings(), clock=clock)
    app = runtime.create_app([build_api(parts), build_web(parts)])
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.parts = parts
    return app
