"""Composition root of the publisher service: wires settings, runtime, handlers and routes."""

from __future__ import annotations

from fastapi import FastAPI

from ksbb_publisher.api.routes import build_api
from ksbb_publisher.handlers import build_router
from ksbb_publisher.settings import PublisherSettings
from ksbb_kit.clock import Clock
from ksbb_kit.runtime import ServiceRuntime

TITLE = "KSBB Publisher"
DESCRIPTION = "Public read models, feed, live stream, open data and the public web page."


def build_runtime(settings: PublisherSettings, *, clock: Clock | None = None) -> ServiceRuntime:
    """The service's runtime (Mongo, Kafka, outbox relay, consumers)."""
    return ServiceRuntime(settings, title=TITLE, description=DESCRIPTION, router=build_router(), clock=clock)


def create_app(settings: PublisherSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service's FastAPI application."""
    runtime = build_runtime(settings or PublisherSettings(), clock=clock)
    return runtime.create_app([build_api()])
