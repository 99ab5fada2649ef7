"""Composition root of the registry service: wires settings, runtime, handlers and routes."""

from __future__ import annotations

from fastapi import FastAPI

from ksbb_registry.api.routes import build_api
from ksbb_registry.handlers import build_router
from ksbb_registry.settings import RegistrySettings
from ksbb_kit.clock import Clock
from ksbb_kit.runtime import ServiceRuntime

TITLE = "KSBB Registry"
DESCRIPTION = "Recipients, facilitator organisations, verification and needs."


def build_runtime(settings: RegistrySettings, *, clock: Clock | None = None) -> ServiceRuntime:
    """The service's runtime (Mongo, Kafka, outbox relay, consumers)."""
    return ServiceRuntime(settings, title=TITLE, description=DESCRIPTION, router=build_router(), clock=clock)


def create_app(settings: RegistrySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service's FastAPI application."""
    runtime = build_runtime(settings or RegistrySettings(), clock=clock)
    return runtime.create_app([build_api()])
