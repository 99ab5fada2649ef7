"""Composition root of the pledges service: wires settings, runtime, handlers and routes."""

from __future__ import annotations

from fastapi import FastAPI

from ksbb_pledges.api.routes import build_api
from ksbb_pledges.handlers import build_router
from ksbb_pledges.settings import PledgesSettings
from ksbb_kit.clock import Clock
from ksbb_kit.runtime import ServiceRuntime

TITLE = "KSBB Pledges"
DESCRIPTION = "Donor pledges, need ledger, delivery lifecycle, offers and matching."


def build_runtime(settings: PledgesSettings, *, clock: Clock | None = None) -> ServiceRuntime:
    """The service's runtime (Mongo, Kafka, outbox relay, consumers)."""
    return ServiceRuntime(settings, title=TITLE, description=DESCRIPTION, router=build_router(), clock=clock)


def create_app(settings: PledgesSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service's FastAPI application."""
    runtime = build_runtime(settings or PledgesSettings(), clock=clock)
    return runtime.create_app([build_api()])
