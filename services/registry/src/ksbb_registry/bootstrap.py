"""Composition root of the registry service: wires settings, runtime, service, handlers, sweeps and routes."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ksbb_kit.clock import Clock
from ksbb_kit.errors import ErrorBody
from ksbb_kit.runtime import ServiceRuntime

from ksbb_registry.api.routes import build_api
from ksbb_registry.domain.rules import RuleViolation
from ksbb_registry.handlers import build_router
from ksbb_registry.service import RegistryService
from ksbb_registry.settings import RegistrySettings

TITLE = "KSBB Registry"
DESCRIPTION = "Recipients, facilitator organisations, verification and needs."
OUTBOX_COLLECTIONS = ["organisations", "recipients", "needs"]


def build_runtime(
    settings: RegistrySettings, *, clock: Clock | None = None
) -> tuple[ServiceRuntime, RegistryService]:
    """The service's runtime (Mongo, Kafka, outbox relay, consumers) and its use-case object."""
    holder: list[RegistryService] = []
    runtime = ServiceRuntime(
        settings,
        title=TITLE,
        description=DESCRIPTION,
        router=build_router(lambda: holder[0]),
        outbox_collections=OUTBOX_COLLECTIONS,
        clock=clock,
    )
    service = RegistryService(
        runtime,
        report_limit_per_hour=settings.report_limit_per_hour,
        claim_grace_seconds=settings.claim_grace_seconds,
    )
    holder.append(service)

    @runtime.on_startup
    async def create_indexes(_: ServiceRuntime) -> None:
        await service.setup()

    @runtime.every(settings.sweep_interval_seconds, "registry-sweeps")
    async def sweeps(_: ServiceRuntime) -> None:
        await service.sweep_need_closures()
        await service.sweep_recipient_claims()
        await service.open_due_periods()
        await service.sweep_rate_counters()

    return runtime, service


def create_app(settings: RegistrySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service's FastAPI application."""
    runtime, service = build_runtime(settings or RegistrySettings(), clock=clock)
    app = runtime.create_app([build_api()])
    app.state.registry = service

    @app.exception_handler(RuleViolation)
    async def _rule_violation(_: Request, exc: RuleViolation) -> JSONResponse:
        body = ErrorBody(code=exc.code, message=exc.message, field=exc.field, details=exc.details)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status)

    return app
