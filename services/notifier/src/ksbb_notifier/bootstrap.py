"""Composition root of the notifier service: wires settings, runtime, handlers, loops and routes."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from ksbb_kit.clock import Clock, SystemClock
from ksbb_kit.runtime import ServiceRuntime

from ksbb_notifier.adapters.http_sender import Resolver, WebhookSender
from ksbb_notifier.adapters.secrets import SecretBox
from ksbb_notifier.adapters.smtp import SmtpMailer
from ksbb_notifier.adapters.store import NotifierStore
from ksbb_notifier.api.routes import build_api
from ksbb_notifier.components import Components
from ksbb_notifier.dispatcher import Dispatcher
from ksbb_notifier.domain.ssrf import AddressPolicy
from ksbb_notifier.handlers import build_router
from ksbb_notifier.mailer import Mailer, MailTransport
from ksbb_notifier.service import NotifierService
from ksbb_notifier.settings import NotifierSettings

TITLE = "KSBB Notifier"
DESCRIPTION = "Signed NGO webhooks (Standard Webhooks) and e-mail to donors and recipients."
#: Collections carrying outbox events: deliveries (delivery_failed), endpoints (endpoint_disabled).
OUTBOX_COLLECTIONS = ("deliveries", "endpoints")


def build_components(
    settings: NotifierSettings,
    *,
    clock: Clock | None = None,
    resolver: Resolver | None = None,
    mail_transport: MailTransport | None = None,
) -> Components:
    """Every collaborator of one notifier instance, wired once."""
    clock = clock or SystemClock()
    holder: dict[str, NotifierService] = {}
    runtime = ServiceRuntime(
        settings,
        title=TITLE,
        description=DESCRIPTION,
        router=build_router(lambda: holder["service"]),
        outbox_collections=OUTBOX_COLLECTIONS,
        clock=clock,
    )
    store = NotifierStore(runtime.db)
    box = SecretBox(settings.secret_key.get_secret_value())
    policy = AddressPolicy.build(settings.ssrf_exempt_hosts, settings.ssrf_allow_cidrs)
    sender = WebhookSender(
        policy,
        insecure_http_hosts=settings.insecure_http_hosts,
        timeout=settings.delivery_timeout_seconds,
        max_body_bytes=settings.response_body_max_bytes,
        resolver=resolver,
    )
    transport = mail_transport or SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        sender=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )
    mailer = Mailer(store, transport, clock, settings)

    async def on_endpoint_disabled(endpoint: dict[str, object], reason: str) -> None:
        await holder["service"].endpoint_disabled_email(endpoint, reason)

    dispatcher = Dispatcher(
        store,
        sender,
        box,
        clock,
        settings,
        events=runtime.events,
        wake_relay=runtime.relay.wake,
        on_endpoint_disabled=on_endpoint_disabled,
    )
    service = NotifierService(store, dispatcher, mailer, clock)
    holder["service"] = service
    components = Components(
        settings=settings,
        runtime=runtime,
        clock=clock,
        store=store,
        box=box,
        policy=policy,
        sender=sender,
        dispatcher=dispatcher,
        mailer=mailer,
        service=service,
    )

    @runtime.on_startup
    async def create_indexes(_: ServiceRuntime) -> None:
        await store.create_indexes()

    @runtime.every(settings.sweep_interval_seconds, "retention-sweep")
    async def sweep_retention(_: ServiceRuntime) -> None:
        await store.sweep_finished(clock.now() - timedelta(days=settings.retention_days))

    if settings.dispatcher_autostart:

        @runtime.every(0.001, "webhook-dispatcher")
        async def deliver_webhooks(_: ServiceRuntime) -> None:
            await dispatcher.serve()

    if settings.mailer_autostart:

        @runtime.every(0.001, "email-sender")
        async def send_emails(_: ServiceRuntime) -> None:
            await mailer.serve()

    return components


def create_app(
    settings: NotifierSettings | None = None,
    *,
    clock: Clock | None = None,
    resolver: Resolver | None = None,
    mail_transport: MailTransport | None = None,
) -> FastAPI:
    """The service's FastAPI application."""
    components = build_components(
        settings or NotifierSettings(), clock=clock, resolver=resolver, mail_transport=mail_transport
    )
    app = components.runtime.create_app([build_api()])
    app.state.notifier = components
    return app
