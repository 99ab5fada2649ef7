"""The notifier's composition root: builds runtime, adapters, use cases, event routes, HTTP routes and jobs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI
from ksbb_kit.clock import Clock, SystemClock
from ksbb_kit.jobs import StuckItems
from ksbb_kit.runtime import ServiceRuntime

from ksbb_notifier.adapters.delivery_store import MongoDeliveryStore
from ksbb_notifier.adapters.endpoint_store import MongoEndpointStore
from ksbb_notifier.adapters.http_sender import HttpUrlRules, HttpWebhookSender, Resolver
from ksbb_notifier.adapters.limits import LocalRateGate, LocalSlots
from ksbb_notifier.adapters.mail_store import MongoEmailQueue
from ksbb_notifier.adapters.mongo import Outbox
from ksbb_notifier.adapters.pending_deliveries import MongoPendingDeliveries
from ksbb_notifier.adapters.replica_store import MongoReplicaStore
from ksbb_notifier.adapters.secrets import RandomSecrets, SecretBox
from ksbb_notifier.adapters.smtp import SmtpMailer
from ksbb_notifier.api import deliveries as deliveries_api
from ksbb_notifier.api import deps, errors
from ksbb_notifier.api import endpoints as endpoints_api
from ksbb_notifier.app.deliveries import Deliveries
from ksbb_notifier.app.dispatcher import Dispatcher
from ksbb_notifier.app.endpoints import Endpoints
from ksbb_notifier.app.mail import Mailer
from ksbb_notifier.app.observability import QueueGauges
from ksbb_notifier.app.ports import DeliveryQueue, MailSender, WebhookSender
from ksbb_notifier.app.replicas import Replicas
from ksbb_notifier.domain.ssrf import AddressPolicy
from ksbb_notifier.handlers import build_batch, build_router
from ksbb_notifier.settings import NotifierSettings

TITLE = "KSBB Notifier"
DESCRIPTION = "Signed NGO webhooks (Standard Webhooks) and e-mail to donors and recipients."
#: Collections carrying outbox events: deliveries (delivery_failed), endpoints (endpoint_disabled).
OUTBOX_COLLECTIONS = ("deliveries", "endpoints")


@dataclass(frozen=True)
class Notifier:
    """One wired notifier instance: what the composition root built, for the app, tests and benchmarks."""

    settings: NotifierSettings
    runtime: ServiceRuntime
    clock: Clock
    delivery_store: MongoDeliveryStore
    webhook_sender: WebhookSender
    endpoints: Endpoints
    deliveries: Deliveries
    dispatcher: Dispatcher
    mailer: Mailer
    replicas: Replicas


def build_notifier(
    settings: NotifierSettings,
    *,
    clock: Clock | None = None,
    resolver: Resolver | None = None,
    webhook_sender: WebhookSender | None = None,
    mail_sender: MailSender | None = None,
) -> Notifier:
    """Wire one notifier instance in order: runtime, adapters, use cases, event routes, jobs."""
    clock = clock or SystemClock()
    runtime = ServiceRuntime(
        settings, title=TITLE, description=DESCRIPTION, outbox_collections=OUTBOX_COLLECTIONS, clock=clock
    )

    # Adapters: each gets only what it uses.
    outbox = Outbox(runtime.events, runtime.relay.pending)
    endpoint_store = MongoEndpointStore(runtime.db, outbox)
    delivery_store = MongoDeliveryStore(runtime.db, outbox)
    email_queue = MongoEmailQueue(runtime.db)
    replica_store = MongoReplicaStore(runtime.db)
    policy = AddressPolicy.build(settings.ssrf_exempt_hosts, settings.ssrf_allow_cidrs)
    sender = webhook_sender or HttpWebhookSender(
        policy,
        insecure_http_hosts=settings.insecure_http_hosts,
        timeout=settings.delivery_timeout_seconds,
        max_body_bytes=settings.response_body_max_bytes,
        resolver=resolver,
        connections_per_endpoint=settings.per_endpoint_concurrency,
    )
    smtp = mail_sender or SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        sender=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )

    # Use cases, each after the ones it calls.
    mailer = Mailer(email_queue, replica_store, smtp, clock, settings)
    endpoints = Endpoints(
        endpoint_store,
        url_rules=HttpUrlRules(settings.insecure_http_hosts),
        policy=policy,
        secrets=RandomSecrets(),
        sealer=SecretBox(settings.secret_key.get_secret_value()),
        mailer=mailer,
        clock=clock,
        settings=settings,
    )
    dispatcher = new_dispatcher(delivery_store, endpoints, sender, clock=clock, settings=settings, stuck=runtime.stuck)
    deliveries = Deliveries(
        delivery_store, endpoint_store, replica_store, endpoints, wake_dispatcher=dispatcher.wake, clock=clock,
        dispatcher=dispatcher,
    )
    replicas = Replicas(replica_store)

    # Events in, now that their handlers' collaborators exist.
    runtime.subscribe(
        build_router(replicas=replicas, deliveries=deliveries, mailer=mailer),
        batch=build_batch(replicas=replicas, deliveries=deliveries, mailer=mailer),
    )

    # Jobs.
    @runtime.on_startup
    async def create_indexes(_: ServiceRuntime) -> None:
        await endpoint_store.create_indexes()
        await delivery_store.create_indexes()
        await email_queue.create_indexes()

    @runtime.every(settings.sweep_interval_seconds, "retention-sweep")
    async def sweep_retention(_: ServiceRuntime) -> None:
        cutoff = clock.now() - timedelta(days=settings.retention_days)
        await deliveries.sweep_finished(cutoff)
        await mailer.sweep_finished(cutoff)

    queue_gauges = QueueGauges(MongoPendingDeliveries(runtime.db))

    @runtime.every(15.0, "webhook-queue-gauges")
    async def observe_queue(_: ServiceRuntime) -> None:
        await queue_gauges.observe(clock.now())

    if settings.dispatcher_autostart:

        @runtime.every(0.001, "webhook-dispatcher")
        async def deliver_webhooks(_: ServiceRuntime) -> None:
            await dispatcher.serve()

    if settings.mailer_autostart:

        @runtime.every(0.001, "email-sender")
        async def send_emails(_: ServiceRuntime) -> None:
            await mailer.serve()

    return Notifier(
        settings=settings,
        runtime=runtime,
        clock=clock,
        delivery_store=delivery_store,
        webhook_sender=sender,
        endpoints=endpoints,
        deliveries=deliveries,
        dispatcher=dispatcher,
        mailer=mailer,
        replicas=replicas,
    )


def new_dispatcher(
    queue: DeliveryQueue,
    endpoints: Endpoints,
    sender: WebhookSender,
    *,
    clock: Clock,
    settings: NotifierSettings,
    stuck: StuckItems | None = None,
) -> Dispatcher:
    """A delivery loop with this instance's own concurrency slots and rate pacing."""
    return Dispatcher(
        queue,
        endpoints,
        sender,
        slots=LocalSlots(per_endpoint=settings.per_endpoint_concurrency, total=settings.global_concurrency),
        rate_gate=LocalRateGate(),
        clock=clock,
        settings=settings,
        stuck=stuck,
    )


def another_dispatcher(
    notifier: Notifier, *, sender: WebhookSender | None = None, settings: NotifierSettings | None = None
) -> Dispatcher:
    """A second delivery loop over the same database, as another notifier instance would run (tests)."""
    return new_dispatcher(
        notifier.delivery_store,
        notifier.endpoints,
        sender or notifier.webhook_sender,
        clock=notifier.clock,
        settings=settings or notifier.settings,
    )


def create_app_for(notifier: Notifier) -> FastAPI:
    """The HTTP app of a built notifier: operational routes, its /v1 routes bound to its use cases."""
    app = notifier.runtime.create_app([endpoints_api.router, deliveries_api.router])
    runtime_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[None]:
        try:
            async with runtime_lifespan(running):
                yield
        finally:
            # After the runtime stopped (no attempt in flight): every kept-alive connection is closed, also
            # where the delivery loop never ran here (another replica held it; tests drive it by hand).
            await notifier.webhook_sender.close()

    app.router.lifespan_context = lifespan
    deps.bind(app, endpoints=notifier.endpoints, deliveries=notifier.deliveries)
    errors.install(app)
    # Read by benchmarks and tests only; no route reaches its collaborators through app state.
    app.state.notifier = notifier
    return app


def create_app(
    settings: NotifierSettings | None = None,
    *,
    clock: Clock | None = None,
    resolver: Resolver | None = None,
    webhook_sender: WebhookSender | None = None,
    mail_sender: MailSender | None = None,
) -> FastAPI:
    """The service's FastAPI application."""
    notifier = build_notifier(
        settings or NotifierSettings(),
        clock=clock,
        resolver=resolver,
        webhook_sender=webhook_sender,
        mail_sender=mail_sender,
    )
    return create_app_for(notifier)
