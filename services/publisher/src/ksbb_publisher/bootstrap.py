"""The composition root of the publisher: wires runtime, stores, use cases, event routes, HTTP routes and jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import FastAPI
from ksbb_kit.clock import Clock, SystemClock
from ksbb_kit.kafka import consumer_lag
from ksbb_kit.mongo import connect
from ksbb_kit.runtime import ServiceRuntime
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_publisher.adapters.feed_poller import FeedPoller
from ksbb_publisher.adapters.projection_store import MongoProjectionStore
from ksbb_publisher.adapters.read_models import MongoReadModels
from ksbb_publisher.adapters.snapshot_files import MongoSnapshotFiles
from ksbb_publisher.adapters.topic_replay import KafkaTopicReplay
from ksbb_publisher.api import atom, exports, feed, needs, organisations, pages, recipients, snapshots, stats
from ksbb_publisher.api.deps import PublicApi
from ksbb_publisher.api.errors import install_error_mapping
from ksbb_publisher.app.exports import OpenData
from ksbb_publisher.app.ports import Progress
from ksbb_publisher.app.projection import Projection
from ksbb_publisher.app.queries import PublicQueries
from ksbb_publisher.app.rebuild import rebuild_read_models
from ksbb_publisher.app.snapshots import Snapshots
from ksbb_publisher.app.stream import FeedBroadcaster, FeedStream, StreamLimits
from ksbb_publisher.handlers import build_router
from ksbb_publisher.settings import PublisherSettings

TITLE = "KSBB Publisher"
DESCRIPTION = (
    "Public read models, activity feed, live stream (SSE), open data with HXL and the public web page. "
    "No login; no personal data: contact persons, phone numbers, e-mails and notes never reach this service."
)
#: HTTP routers in the order their routes are matched (and listed in the OpenAPI document).
ROUTERS = (recipients, needs, organisations, feed, atom, stats, snapshots, exports, pages)


@dataclass(frozen=True)
class Publisher:
    """The wired publisher service; tests and operators reach its parts through `app.state.parts`."""

    settings: PublisherSettings
    clock: Clock
    db: AsyncDatabase[dict[str, Any]]
    store: MongoProjectionStore
    snapshot_files: MongoSnapshotFiles
    projection: Projection
    queries: PublicQueries
    open_data: OpenData
    snapshots: Snapshots
    broadcaster: FeedBroadcaster
    feed_stream: FeedStream
    poller: FeedPoller


def build_publisher(settings: PublisherSettings, db: AsyncDatabase[dict[str, Any]], clock: Clock) -> Publisher:
    """The publisher's stores and use cases on one database, in dependency order."""
    store = MongoProjectionStore(db)
    read_models = MongoReadModels(db)
    queries = PublicQueries(read_models)
    broadcaster = FeedBroadcaster(queries.render_feed, queue_size=settings.sse_queue_size)
    open_data = OpenData(read_models)
    snapshot_files = MongoSnapshotFiles(db)
    return Publisher(
        settings=settings,
        clock=clock,
        db=db,
        store=store,
        snapshot_files=snapshot_files,
        projection=Projection(store, clock, on_feed_entries=broadcaster.announce),
        queries=queries,
        open_data=open_data,
        snapshots=Snapshots(snapshot_files, open_data, settings.snapshot_chunk_bytes),
        broadcaster=broadcaster,
        feed_stream=FeedStream(
            read_models,
            queries.render_feed,
            broadcaster,
            settings.sse_heartbeat_seconds,
            StreamLimits(
                max_replay=settings.sse_max_replay,
                per_client=settings.sse_max_streams_per_client,
                total=settings.sse_max_streams,
                retry_after_seconds=settings.sse_retry_after_seconds,
            ),
        ),
        poller=FeedPoller(db, broadcaster.announce),
    )


def create_app(settings: PublisherSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service's FastAPI application, with its consumer, start-up hooks and background jobs."""
    settings = settings or PublisherSettings()
    runtime = ServiceRuntime(settings, title=TITLE, description=DESCRIPTION, clock=clock or SystemClock())
    parts = build_publisher(settings, runtime.db, runtime.clock)
    # Records arrive in batches folded per document (one write per changed document); the router's
    # handlers are the single-record path a failed batch falls back to.
    runtime.subscribe(build_router(parts.projection), batch=parts.projection.apply_batch,
                      batch_size=settings.consume_batch_size)

    @runtime.on_startup
    async def indexes(_: ServiceRuntime) -> None:
        await parts.store.ensure_indexes()
        await parts.snapshot_files.ensure_indexes()

    @runtime.every(settings.feed_poll_seconds, "feed-poll", per_replica=True)  # each replica feeds its own clients
    async def poll(_: ServiceRuntime) -> None:
        await parts.poller.poll()

    @runtime.every(settings.snapshot_interval_seconds, "open-data-snapshot")
    async def snapshot(_: ServiceRuntime) -> None:
        # Under the job lease: one replica takes it, once the group has consumed what was published so far.
        topics = [settings.topic(t.name) for t in runtime.router.topics()] if runtime.router else []
        await parts.snapshots.take_when_caught_up(runtime.clock.now(), lambda: read_models_caught_up(settings, topics))

    app = runtime.create_app([module.router for module in ROUTERS])
    pages.mount_static(app)
    install_error_mapping(app)
    PublicApi(
        settings=settings,
        clock=runtime.clock,
        queries=parts.queries,
        open_data=parts.open_data,
        snapshots=parts.snapshots,
        feed_stream=parts.feed_stream,
    ).install(app)
    app.state.parts = parts
    return app


async def read_models_caught_up(settings: PublisherSettings, topics: list[str]) -> bool:
    """Whether the publisher's consumer group has no lag on the topics it projects."""
    return sum((await consumer_lag(settings.kafka_connection, settings.consumer_group, topics)).values()) == 0


async def retake_snapshot(settings: PublisherSettings, day: date) -> dict[str, Any]:
    """Take the snapshot named `day` again from the read models as they are now (`ksbb-publisher snapshot`)."""
    client = connect(settings.mongodb_url)
    try:
        parts = build_publisher(settings, client[settings.database_name], SystemClock())
        return await parts.snapshots.retake(day, SystemClock().now())
    finally:
        await client.close()


async def rebuild(
    settings: PublisherSettings, *, database: str | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Rebuild the read models in `database` (default: the service's) from the topics' beginning.

    Events go through the live consumer's batch path; see `app.rebuild.rebuild_read_models`.
    """
    client = connect(settings.mongodb_url)
    try:
        store = MongoProjectionStore(client[database or settings.database_name])
        projection = Projection(store, SystemClock())
        router = build_router(projection)
        topics = [settings.topic(t.name) for t in router.topics()]
        replay = KafkaTopicReplay(settings.kafka_connection, max_records=settings.consume_batch_size * 10)
        return await rebuild_read_models(store, replay, topics, set(router.handlers), projection, progress=progress)
    finally:
        await client.close()
