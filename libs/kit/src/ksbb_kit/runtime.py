"""The shared runtime a service's composition root builds: Mongo, Kafka, outbox relay, consumers, HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import HTMLResponse, JSONResponse
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.site import get_asyncapi_html
from ksbb_contracts import Event
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_kit.auth import TokenVerifier
from ksbb_kit.batches import BatchDispatcher, BatchHandler, raw_batch_decoder, tolerant_batch_parser
from ksbb_kit.calm import RepeatingFailure, quiet_client_loggers
from ksbb_kit.clock import Clock, SystemClock
from ksbb_kit.consumer import ConsumedRecord, EventDispatcher, EventRouter
from ksbb_kit.deadletters import DeadLetterPayloads
from ksbb_kit.errors import install_error_handlers
from ksbb_kit.followers import FollowedRecord, Follower
from ksbb_kit.http import IdempotencyStore, ObserveRequests
from ksbb_kit.http_limits import BodySizeLimit, RouteLimits
from ksbb_kit.jobs import JobLease, StuckItems
from ksbb_kit.kafka import (
    AssignedLag,
    DeadLetterDepth,
    KafkaRecordPublisher,
    ensure_topics,
    make_broker,
    poll_batches_without_pause,
    raw_body_decoder,
    tolerant_parser,
)
from ksbb_kit.metrics import (
    JOB_LAST_SUCCESS,
    JOB_LEASE_HELD,
    JOB_RUN_SECONDS,
    JOB_RUNS,
)
from ksbb_kit.mongo import connect, ping
from ksbb_kit.openapi import document_common_responses
from ksbb_kit.outbox import OutboxRelay, outbox_entries
from ksbb_kit.settings import KitSettings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)
#: How long one step of stopping (background tasks, Kafka consumers, producer) may take before it is left.
STOP_STEP_SECONDS = 20.0
#: After this long, a background task that has not ended on its cancellation is named in the log.
STOP_NOTICE_SECONDS = 3.0
#: Longest wait of one poll of a batch consumer (it returns as soon as a record is there).
BATCH_POLL_MS = 100
#: A follower's batch may wait for its delay and for a database outage before the next poll (30 min).
FOLLOWER_MAX_POLL_INTERVAL_MS = 30 * 60 * 1000


def where_it_waits(task: asyncio.Task[Any]) -> str:
    """The chain of awaits a task is suspended in, outermost first, as `file:line in function` (one log line)."""
    frames: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(frames) < 30:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None) or getattr(
            awaited, "ag_frame", None)
        if frame is None:
            break
        frames.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None) or getattr(
            awaited, "ag_await", None)
    return " > ".join(frames) or "(no frame)"


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait for them, naming any that holds the stop and leaving it after the step."""
    for task in reversed(tasks):
        task.cancel()
    if tasks:
        notice = min(STOP_NOTICE_SECONDS, STOP_STEP_SECONDS)
        _done, slow = await asyncio.wait(tasks, timeout=notice)
        for task in slow:
            # Where it waits says why (a cancellation swallowed, a client's close that hangs): logged now,
            # while it still waits, not only once the step gives up on it.
            log.warning("stopping: background task %s has not ended %.0f s after its cancellation; it waits in %s",
                        task.get_name(), notice, where_it_waits(task))
        _done, stuck = (await asyncio.wait(slow, timeout=STOP_STEP_SECONDS - notice)) if slow else (set(), set())
        for task in stuck:
            log.warning("stopping: background task %s did not end within %.0f s; left behind",
                        task.get_name(), STOP_STEP_SECONDS)


async def _bounded(what: str, step: Awaitable[Any]) -> None:
    """One step of stopping: errors are not the caller's problem any more, and it may not take for ever."""
    try:
        await asyncio.wait_for(step, timeout=STOP_STEP_SECONDS)
    except TimeoutError:
        log.warning("stopping: %s did not stop within %.0f s; left behind", what, STOP_STEP_SECONDS)
    except Exception:  # stopping goes on whatever one client does
        log.debug("stopping: %s failed to stop", what, exc_info=True)


StartupHook = Callable[["ServiceRuntime"], Awaitable[None]]
BackgroundJob = Callable[["ServiceRuntime"], Coroutine[Any, Any, None]]
#: How long a job lease lasts without renewal: a replica that died is replaced after at most this long.
JOB_LEASE_SECONDS = 30.0


class ServiceRuntime:
    """Everything a service shares with the others, wired once; services add routes, handlers and jobs."""

    def __init__(
        self,
        settings: KitSettings,
        *,
        title: str,
        description: str,
        outbox_collections: Sequence[str] = (),
        clock: Clock | None = None,
        create_topics: bool | None = None,
    ) -> None:
        self.settings = settings
        self.title = title
        self.description = description
        self.clock: Clock = clock or SystemClock()
        self.source = f"/ksbb/{settings.service_name}"
        self.mongo = connect(settings.mongodb_url)
        self.db: AsyncDatabase[dict[str, Any]] = self.mongo[settings.database_name]
        self.publisher = KafkaRecordPublisher(settings.kafka_connection, client_id=f"ksbb-{settings.service_name}")
        self.broker: KafkaBroker = make_broker(settings.kafka_connection, client_id=f"ksbb-{settings.service_name}")
        self.relay = OutboxRelay(
            self.db, outbox_collections, self.publisher, topic_prefix=settings.topic_prefix,
            sweep_seconds=settings.outbox_sweep_seconds, lease_seconds=settings.outbox_lease_seconds,
            marker_grace_seconds=settings.outbox_marker_grace_seconds,
        )
        self.router: EventRouter | None = None
        self.dispatcher: EventDispatcher | None = None
        self.assigned_lag = AssignedLag(settings.consumer_group, self._consumers)
        self.dead_letter_depth = DeadLetterDepth(settings.kafka_connection, self._dead_letter_topics)
        self.verifier = TokenVerifier.from_settings(settings)
        #: Markers of job items that raised (`ksbb_kit.jobs.for_each_item`), listed by `ksbb jobs stuck`.
        self.stuck = StuckItems(self.db, self.clock)
        self.idempotency = IdempotencyStore(
            self.db, self.clock, timedelta(hours=settings.idempotency_retention_hours)
        )
        # Production leaves topics to the rendered KafkaTopic resources / topics-init job (settings.creates_topics).
        self.create_topics = settings.creates_topics if create_topics is None else create_topics
        #: Who holds this replica's job leases (unique per runtime), and for how long a lease lasts unrenewed.
        self.holder_id = f"{settings.service_name}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.job_lease_seconds = JOB_LEASE_SECONDS
        self._startup: list[StartupHook] = []
        self._jobs: list[tuple[str, BackgroundJob]] = []
        self._followers: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.kafka_connected = asyncio.Event()
        #: Failed connection attempts in a row while Kafka is unreachable, logged once per interval with a count.
        self.kafka_outage = RepeatingFailure(log, "Kafka not reachable yet; readiness says 503")
        self.every(settings.sweep_interval_seconds, "idempotency-sweep")(_sweep_idempotency_keys)

    # -- composition -----------------------------------------------------------------------------

    def on_startup(self, hook: StartupHook) -> StartupHook:
        """Run a hook once Mongo is connected (e.g. to create indexes)."""
        self._startup.append(hook)
        return hook

    def every(
        self, seconds: float, name: str, *, per_replica: bool = False,
    ) -> Callable[[BackgroundJob], BackgroundJob]:
        """Run a sweep periodically while the service is up (expiry, retention, retries).

        Under a lease (`ksbb_kit.jobs.JobLease`): of several replicas, one does each run; when it stops
        (released) or dies (its lease expires), another takes over on the same schedule. A job serving
        this replica only (e.g. polling for its own live-feed clients) says `per_replica=True`: no lease.
        """

        def register(job: BackgroundJob) -> BackgroundJob:
            async def loop(runtime: ServiceRuntime) -> None:
                await runtime.kafka_connected.wait()
                lease = JobLease(runtime.db, name, runtime.holder_id, runtime.job_lease_seconds)
                failing = RepeatingFailure(log, f"background job {name} failed; it runs again", level=logging.ERROR,
                                           with_traceback=True)
                # Look at the lease often enough to renew it in time, and at least once per interval;
                # a replica waiting for the lease asks at most once a second.
                tick = min(seconds, runtime.job_lease_seconds / 3)
                waiting = min(runtime.job_lease_seconds / 3, max(tick, 1.0))
                if per_replica:
                    await _run_unleased(runtime, job, name, seconds, failing)
                    return
                try:
                    while True:
                        try:
                            held = await lease.hold()
                            JOB_LEASE_HELD.labels(job=name).set(1 if held else 0)
                            if held and await lease.due(seconds):
                                await _run_leased(runtime, job, lease, name)
                            failing.recovered()
                            if not held:
                                await asyncio.sleep(waiting)
                                continue
                        except asyncio.CancelledError:
                            raise
                        except Exception as exc:
                            # A job failing as a whole (its database unreachable) backs off instead of spinning;
                            # one item failing is the job's own business (ksbb_kit.jobs.for_each_item).
                            failing.failed(exc)
                            await asyncio.sleep(max(tick, min(30.0, 0.5 * 2 ** min(failing.streak, 6))))
                            continue
                        await asyncio.sleep(tick)
                finally:
                    JOB_LEASE_HELD.labels(job=name).set(0)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(lease.release(), timeout=3)

            self._jobs.append((name, loop))
            return job

        return register

    def events(self, *events: Event) -> list[dict[str, Any]]:
        """Outbox entries for events produced by this service (embed them in the same write)."""
        return outbox_entries(events, source=self.source, clock=self.clock)

    def subscribe(self, router: EventRouter, *, batch: BatchHandler | None = None, batch_size: int = 500) -> None:
        """Consume the router's topics; call once, after the handlers' collaborators exist, before start.

        With `batch`, records arrive up to `batch_size` at a time and runs of handled records go to `batch`
        in one call (`ksbb_kit.batches`); the router's handlers remain the single-record path.
        """
        if self.router is not None:
            raise RuntimeError("a runtime subscribes one event router")
        settings = self.settings
        self.router = router
        self.dispatcher = dispatcher = EventDispatcher(
            router, self.publisher, group=settings.consumer_group, topic_prefix=settings.topic_prefix,
            max_attempts=settings.handler_max_attempts, backoff_seconds=settings.handler_backoff_seconds,
            payloads=DeadLetterPayloads(self.db), max_dead_letter_bytes=settings.dead_letter_max_bytes,
            clock=self.clock,
        )
        if router.undecided_types():
            log.warning("%s neither handles nor ignores %s on its topics: such records will be dead-lettered "
                        "(handle them, or list them in ksbb_contracts.topics.IGNORED_EVENT_TYPES)",
                        router.service, ", ".join(router.undecided_types()))
        if not router.topics():
            return
        topics = [settings.topic(t.name) for t in router.topics()]
        if batch is not None:
            self._subscribe_batches(topics, BatchDispatcher(dispatcher, router, batch), batch_size)
            return

        @self.broker.subscriber(
            *topics,
            group_id=self.settings.consumer_group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            title=f"{self.settings.service_name}-events",
            parser=tolerant_parser,  # no record can fail before the dispatcher sees it
            decoder=raw_body_decoder,
        )
        async def consume(message: KafkaMessage) -> None:
            raw = message.raw_message
            assert not isinstance(raw, tuple)
            # Raw bytes in: whatever the key and headers hold, the dispatcher decides (and dead-letters) it.
            await dispatcher.handle(ConsumedRecord.received(
                raw.topic, raw.partition, raw.offset, raw.key, raw.value, raw.headers or (),
            ))

    def follow(self, follower: Follower, *, batch_size: int = 500) -> None:
        """Read back the follower's topic under its own group (`<consumer group>-<job>`), a batch at a time,
        each batch once its newest record is old enough (`ksbb_kit.followers`)."""
        topics = {event_type.topic.name for event_type in follower.event_types}
        if len(topics) != 1:
            raise ValueError(f"a follower reads one topic; {follower.job} names {sorted(topics)}")
        followed = next(iter(follower.event_types)).topic
        if (self.settings.service_name, follower.job) not in followed.followers:
            # The contracts derive the follower's Kafka ACLs (its group, read access) from `Topic.followers`.
            raise ValueError(f"{followed.name} does not list ({self.settings.service_name!r}, {follower.job!r}) "
                             "among its followers in ksbb_contracts.topics")
        subscriber = self._batch_subscriber(
            [self.settings.topic(topics.pop())], f"{self.settings.consumer_group}-{follower.job}", follower.job,
            batch_size,
            # A batch may wait for its delay (plus a database outage) before the next poll.
            max_poll_interval_ms=FOLLOWER_MAX_POLL_INTERVAL_MS,
            # Not a consumer of the topic (the service reads back what it produced, dead-letters nothing):
            # the AsyncAPI document lists what the service consumes, each topic with its dead-letter topic.
            include_in_schema=False,
        )
        self._followers.append(subscriber)

        @subscriber
        async def consume(message: KafkaMessage) -> None:
            raw = message.raw_message
            records = raw if isinstance(raw, tuple) else (raw,)
            await follower.follow([FollowedRecord(r.value, r.timestamp) for r in records])

    def _batch_subscriber(self, topics: list[str], group: str, title: str, batch_size: int, **options: Any) -> Any:
        """A batch subscriber of these topics under a group: raw records, whatever their bytes."""
        return self.broker.subscriber(
            *topics,
            group_id=group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            title=f"{self.settings.service_name}-{title}",
            batch=True,
            max_records=batch_size,
            batch_timeout_ms=BATCH_POLL_MS,
            parser=tolerant_batch_parser,
            decoder=raw_batch_decoder,
            **options,
        )

    def _subscribe_batches(self, topics: list[str], dispatcher: BatchDispatcher, batch_size: int) -> None:
        subscriber = self._batch_subscriber(topics, self.settings.consumer_group, "events", batch_size)
        # A record is handled as soon as it arrives, never after FastStream's pause following an empty poll.
        poll_batches_without_pause(subscriber, timeout_ms=BATCH_POLL_MS, max_records=batch_size)

        @subscriber
        async def consume(message: KafkaMessage) -> None:
            raw = message.raw_message
            records = raw if isinstance(raw, tuple) else (raw,)
            await dispatcher.handle([
                ConsumedRecord.received(r.topic, r.partition, r.offset, r.key, r.value, r.headers or ())
                for r in records
            ])

    # -- lifecycle -------------------------------------------------------------------------------

    async def _connect_kafka(self) -> None:
        """Connect producer, topics and consumers, retrying while Kafka is unreachable (readyz says 503)."""
        delay = 0.5
        quiet_client_loggers()
        unreachable = self.kafka_outage
        while True:
            if self._stopping:  # a client's close swallows a cancellation (aiokafka): the stop still ends this
                return
            try:
                if self.create_topics:
                    from ksbb_contracts.topics import all_topics_with_dlqs

                    await ensure_topics(self.settings.kafka_connection, all_topics_with_dlqs(),
                                        self.settings.topic_prefix, self.settings.topic_partitions,
                                        replication_factor=self.settings.kafka_replication_factor)
                await self.publisher.start()
                await self.broker.start()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                unreachable.failed(exc, retry_in=delay)
                # The relay and the dispatcher hold this same publisher; it starts afresh on the next round.
                with contextlib.suppress(Exception):
                    await self.publisher.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        unreachable.recovered()
        self.kafka_connected.set()
        if self._stopping:  # connected as the stop began (a client's start that finished despite the cancellation)
            return
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        for name, job in self._jobs:
            self._tasks.append(asyncio.create_task(job(self), name=name))

    async def start(self) -> None:
        """Connect and start background work; Kafka connection continues in the background."""
        await self.idempotency.create_indexes()
        for hook in self._startup:
            await hook(self)
        self._tasks.append(asyncio.create_task(self._connect_kafka(), name="kafka-connect"))

    async def stop(self) -> None:
        """Stop background work and disconnect; every step is bounded, so a stuck one cannot hold the exit."""
        self._stopping = True
        # A round per batch: a task ending late (the Kafka connection) may still have started others.
        while self._tasks:
            tasks, self._tasks = self._tasks, []
            await _cancel_and_wait(tasks)
        if self.kafka_connected.is_set():
            await _bounded("the Kafka consumers", self.broker.stop())
        await _bounded("the dead-letter depth clients", self.dead_letter_depth.close())
        await _bounded("the Kafka producer", self.publisher.stop())
        await self.mongo.close()

    async def ready(self) -> dict[str, bool]:
        """Readiness per dependency."""
        mongo_ok = await ping(self.db)
        kafka_ok = False
        if self.kafka_connected.is_set():
            try:
                kafka_ok = await asyncio.wait_for(self.broker.ping(timeout=2), timeout=3)
            except Exception:
                kafka_ok = False
        return {"mongodb": mongo_ok, "kafka": kafka_ok}

    async def lag(self) -> dict[str, int]:
        """Consumer lag per topic of the partitions assigned to this replica (the metric is per partition)."""
        per_topic: dict[str, int] = {}
        for tp, value in (await self.assigned_lag.measure()).items():
            per_topic[tp.topic] = per_topic.get(tp.topic, 0) + value
        return per_topic

    def _dead_letter_topics(self) -> dict[str, str]:
        """This replica's group's dead-letter topics (physical name) and the logical topic each one serves."""
        if self.router is None:
            return {}
        return {self.settings.topic(t.dlq(self.router.service).name): t.name for t in self.router.topics()}

    def _consumers(self) -> list[AIOKafkaConsumer]:
        """The aiokafka consumers of this runtime's subscribers (those started)."""
        # A follower lags behind on purpose (its delay): it is not a consumer whose lag means trouble.
        found = [getattr(subscriber, "consumer", None) for subscriber in self.broker.subscribers
                 if subscriber not in self._followers]
        return [consumer for consumer in found if isinstance(consumer, AIOKafkaConsumer)]

    # -- HTTP ------------------------------------------------------------------------------------

    def create_app(self, routers: Sequence[APIRouter] = (), *, version: str = "0.1.0") -> FastAPI:
        """The service's FastAPI app with health, readiness, metrics, OpenAPI and AsyncAPI docs."""
        runtime = self

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await runtime.start()
            try:
                yield
            finally:
                await runtime.stop()

        app = FastAPI(title=self.title, description=self.description, version=version, lifespan=lifespan)
        app.state.runtime = self
        app.state.token_verifier = self.verifier
        install_error_handlers(app)
        document_common_responses(app, self.settings.max_request_body_bytes)
        # Added before the access-log middleware, which therefore wraps it: a refused body is logged and counted too.
        app.add_middleware(BodySizeLimit, limits=RouteLimits(
            self.settings.max_request_body_bytes, app.openapi, self.settings.max_request_body_routes))
        app.add_middleware(ObserveRequests, service=runtime.settings.service_name)

        ops = APIRouter(tags=["operations"])

        @ops.get("/healthz", summary="Liveness: the process is running")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @ops.get("/readyz", summary="Readiness: Kafka and MongoDB reachable",
                 responses={503: {"description": "a dependency is unreachable"}})
        async def readyz() -> JSONResponse:
            checks = await runtime.ready()
            status = 200 if all(checks.values()) else 503
            return JSONResponse({"status": "ready" if status == 200 else "unavailable", "checks": checks},
                                status_code=status)

        @ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
        async def metrics() -> Response:
            if runtime.kafka_connected.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(runtime.lag(), timeout=3)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(runtime.dead_letter_depth.measure(), timeout=3)
                with contextlib.suppress(Exception):
                    await runtime.relay.backlog()
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        @ops.get("/asyncapi.json", summary="AsyncAPI document of the events this service consumes")
        async def asyncapi_json() -> JSONResponse:
            return JSONResponse(runtime.asyncapi().to_jsonable())

        @ops.get("/asyncapi", summary="AsyncAPI documentation page", response_class=HTMLResponse)
        async def asyncapi_page() -> HTMLResponse:
            return HTMLResponse(get_asyncapi_html(runtime.asyncapi()))

        app.include_router(ops)
        for router in routers:
            app.include_router(router)
        return app

    def asyncapi(self) -> Any:
        """The AsyncAPI specification generated from the broker's subscribers."""
        return AsyncAPI(self.broker, title=self.title, description=self.description,
                        schema_version="3.0.0").to_specification()


async def _run_unleased(
    runtime: ServiceRuntime, job: BackgroundJob, name: str, seconds: float, failing: RepeatingFailure,
) -> None:
    """A per-replica job's loop: every replica runs it; timed and counted like the leased ones."""
    while True:
        started = time.perf_counter()
        try:
            await job(runtime)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            JOB_RUNS.labels(job=name, outcome="failure").inc()
            failing.failed(exc)
            await asyncio.sleep(max(seconds, min(30.0, 0.5 * 2 ** min(failing.streak, 6))))
            continue
        JOB_RUN_SECONDS.labels(job=name).observe(time.perf_counter() - started)
        JOB_RUNS.labels(job=name, outcome="success").inc()
        JOB_LAST_SUCCESS.labels(job=name).set(time.time())
        failing.recovered()
        await asyncio.sleep(seconds)


async def _run_leased(runtime: ServiceRuntime, job: BackgroundJob, lease: JobLease, name: str) -> None:
    """One run of a job, renewing its lease meanwhile (a run may outlast the lease); timed and counted."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.seconds / 3)
            with contextlib.suppress(Exception):
                await lease.hold()

    renewing = asyncio.create_task(renew(), name=f"{name}-lease")
    started = time.perf_counter()
    try:
        await job(runtime)
    except asyncio.CancelledError:
        raise
    except Exception:
        JOB_RUNS.labels(job=name, outcome="failure").inc()
        raise
    finally:
        renewing.cancel()
        with contextlib.suppress(BaseException):
            await renewing
        JOB_RUN_SECONDS.labels(job=name).observe(time.perf_counter() - started)
    JOB_RUNS.labels(job=name, outcome="success").inc()
    JOB_LAST_SUCCESS.labels(job=name).set(time.time())


async def _sweep_idempotency_keys(runtime: ServiceRuntime) -> None:
    """Forget Idempotency-Keys past their retention (every service stores them through the kit)."""
    await runtime.idempotency.sweep()


def server_config(
    app: FastAPI | Callable[[], FastAPI], settings: KitSettings, **overrides: Any
) -> uvicorn.Config:
    """uvicorn's configuration for a service: bind address, trusted proxies and root path from the settings.

    `X-Forwarded-For`/`-Proto` are honoured only from `settings.forwarded_allow_ips` (default: nobody;
    uvicorn alone would trust loopback, letting any local client pick its address). `root_path` moves the
    service's own docs under the gateway's `/svc/<service>` prefix; the API stays in the gateway's one
    `/v1` path space, so the OpenAPI document gets no `servers` entry for the prefix.
    """
    import uvicorn

    def behind_gateway(built: FastAPI) -> FastAPI:
        built.root_path_in_servers = False
        return built

    target: Any = behind_gateway(app) if isinstance(app, FastAPI) else (lambda: behind_gateway(app()))
    trusted = settings.trusted_proxies()
    options: dict[str, Any] = {
        "factory": not isinstance(app, FastAPI), "host": settings.http_host, "port": settings.http_port,
        "log_config": None, "access_log": False, "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted, "root_path": settings.root_path,
    }
    return uvicorn.Config(target, **{**options, **overrides})


def serve(app_factory: Callable[[], FastAPI], settings: KitSettings) -> None:
    """Run a service with uvicorn and JSON logs; the app is built inside uvicorn's event loop.

    Factory mode matters: the Kafka clients the runtime creates need a running loop.
    """
    import uvicorn

    from ksbb_kit.logging import configure_logging

    configure_logging(settings.service_name, settings.log_level)
    uvicorn.Server(server_config(app_factory, settings)).run()
