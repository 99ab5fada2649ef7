"""Composition root of the notifier service: wires settings, runtime, handlers and routes."""

from __future__ import annotations

from fastapi import FastAPI

from ksbb_notifier.api.routes import build_api
from ksbb_notifier.handlers import build_router
from ksbb_notifier.settings import NotifierSettings
from ksbb_kit.clock import Clock
from ksbb_kit.runtime import ServiceRuntime

TITLE = "KSBB Notifier"
DESCRIPTION = "Signed NGO webhooks and e-mail to donors and recipients."


def build_runtime(settings: NotifierSettings, *, clock: Clock | None = None) -> ServiceRuntime:
    """The service's runtime (Mongo, Kafka, outbox relay, consumers)."""
    return ServiceRuntime(settings, title=TITLE, description=DESCRIPTION, router=build_router(), clock=clock)


def create_app(settings: NotifierSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service's FastAPI application."""
    runtime = build_runtime(settings or NotifierSettings(), clock=clock)
    return runtime.create_app([build_api()])
