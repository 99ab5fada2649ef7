"""The composition root of the registry: settings -> runtime -> stores -> use cases -> handlers, jobs, routes.

Everything is built here, once, in this order; tests replace parts through the keyword overrides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from ksbb_kit.clock import Clock
from ksbb_kit.http import IdempotencyStore
from ksbb_kit.outbox import PendingWrite
from ksbb_kit.restate_pages import MongoRestatePages, RestatePass
from ksbb_kit.runtime import ServiceRuntime
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_registry.adapters.claims import ClaimStore
from ksbb_registry.adapters.members import AccountCollection, identity_directory
from ksbb_registry.adapters.needs import NEED_DOCUMENTS, NeedCollection
from ksbb_registry.adapters.organisations import ORGANISATION_DOCUMENTS, OrganisationCollection
from ksbb_registry.adapters.recipients import RECIPIENT_DOCUMENTS, RecipientCollection
from ksbb_registry.adapters.reports import RateCounters, ReportCollection
from ksbb_registry.adapters.store import OutboxEntries, ensure_indexes
from ksbb_registry.api import build_api
from ksbb_registry.api.deps import Services, install
from ksbb_registry.app.members import MemberService
from ksbb_registry.app.needs import NeedService
from ksbb_registry.app.organisations import OrganisationService
from ksbb_registry.app.ports import (
    AccountDirectory,
    DuplicateClaims,
    MemberStore,
    NeedStore,
    OrganisationStore,
    RateCounter,
    RecipientStore,
    ReportStore,
)
from ksbb_registry.app.recipients import RecipientService
from ksbb_registry.app.reports import ReportService
from ksbb_registry.app.restate import (
    NEEDS_JOB,
    ORGANISATIONS_JOB,
    RECIPIENTS_JOB,
    need_restatement_job,
    organisation_restatement_job,
    recipient_restatement_job,
)
from ksbb_registry.handlers import build_router
from ksbb_registry.settings import RegistrySettings

TITLE = "KSBB Registry"
DESCRIPTION = "Recipients, facilitator organisations, verification and needs."
OUTBOX_COLLECTIONS = ["organisations", "recipients", "needs"]


@dataclass(frozen=True)
class Stores:
    """The registry's persistence, one store per port."""

    organisations: OrganisationStore
    recipients: RecipientStore
    needs: NeedStore
    reports: ReportStore
    report_rate: RateCounter
    claims: DuplicateClaims
    members: MemberStore


@dataclass(frozen=True)
class Registry:
    """Everything the composition root built; the app's routes get `services` (as `app.state.registry`)."""

    runtime: ServiceRuntime
    stores: Stores
    services: Services
    #: Anti-entropy of needs, recipients and organisations (one page of each per `registry-restate` run).
    restatements: tuple[RestatePass, ...] = ()


def mongo_stores(
    db: AsyncDatabase[dict[str, Any]],
    clock: Clock,
    *,
    outbox: OutboxEntries,
    pending: PendingWrite,
    claim_grace_seconds: float,
) -> tuple[Stores, Callable[[], Awaitable[None]]]:
    """The MongoDB stores, given only what they use, and the start-up step that creates their indexes."""
    writes: dict[str, Any] = {"clock": clock, "outbox": outbox, "pending": pending}
    claims = ClaimStore(db, clock, timedelta(seconds=claim_grace_seconds))
    accounts = AccountCollection(db["accounts"])
    stores = Stores(
        organisations=OrganisationCollection(db["organisations"], ORGANISATION_DOCUMENTS, **writes),
        recipients=(recipients := RecipientCollection(db["recipients"], RECIPIENT_DOCUMENTS, **writes)),
        needs=(needs := NeedCollection(db["needs"], NEED_DOCUMENTS, **writes)),
        reports=ReportCollection(db["reports"]),
        report_rate=RateCounters(db["report_rate"]),
        claims=claims,
        members=accounts,
    )

    async def setup() -> None:
        await ensure_indexes(db)
        await needs.adopt_due()  # sweep entries for work written before entries existed
        await recipients.adopt_due()
        await accounts.setup()
        await claims.setup()  # its sweep index, and the one-off claim backfill of older data

    return stores, setup


def use_cases(
    stores: Stores,
    clock: Clock,
    *,
    report_limit_per_hour: int,
    idempotency: IdempotencyStore,
    accounts: AccountDirectory,
    invitation_client_id: str | None = None,
    invitation_redirect_uri: str | None = None,
) -> Services:
    """The registry's use cases over the given stores and identity provider (what routes and handlers call)."""
    needs = NeedService(stores.needs, stores.recipients, clock)
    members = MemberService(
        stores.members, stores.organisations, stores.recipients, accounts, clock,
        client_id=invitation_client_id, redirect_uri=invitation_redirect_uri,
    )
    return Services(
        organisations=OrganisationService(stores.organisations, clock),
        recipients=RecipientService(
            stores.recipients, stores.organisations, stores.claims, needs, clock,
            on_archived=members.recipient_archived,
        ),
        members=members,
        needs=needs,
        reports=ReportService(
            stores.reports, stores.recipients, stores.report_rate, clock, limit_per_hour=report_limit_per_hour
        ),
        idempotency=idempotency,
    )


def build(
    settings: RegistrySettings,
    *,
    clock: Clock | None = None,
    stores: Stores | None = None,
    accounts: AccountDirectory | None = None,
) -> Registry:
    """Wire the registry in one order: runtime, stores (MongoDB unless a test passes `stores`, whose setup is
    then its own), identity provider (Keycloak unless a test passes `accounts`), use cases, event handlers,
    sweeps."""
    runtime = ServiceRuntime(
        settings, title=TITLE, description=DESCRIPTION, outbox_collections=OUTBOX_COLLECTIONS, clock=clock
    )
    if stores is None:
        stores, setup = mongo_stores(
            runtime.db,
            runtime.clock,
            outbox=runtime.events,
            pending=runtime.relay.pending,
            claim_grace_seconds=settings.claim_grace_seconds,
        )

        @runtime.on_startup
        async def create_indexes(_: ServiceRuntime) -> None:
            await setup()

    services = use_cases(
        stores,
        runtime.clock,
        report_limit_per_hour=settings.report_limit_per_hour,
        idempotency=runtime.idempotency,
        accounts=accounts if accounts is not None else identity_directory(settings),
        invitation_client_id=settings.invitation_client_id,
        invitation_redirect_uri=settings.invitation_redirect_uri,
    )
    runtime.subscribe(build_router(services.needs))

    @runtime.every(settings.sweep_interval_seconds, "registry-sweeps")
    async def sweeps(_: ServiceRuntime) -> None:
        # before the need closure: it clears the archived units' marker this step looks for
        await services.members.disable_pending(stuck=runtime.stuck)
        await services.needs.close_pending(stuck=runtime.stuck)
        await services.recipients.sweep_claims()
        await services.needs.open_due_periods(stuck=runtime.stuck)
        await services.reports.forget_ended_windows()

    restatements = (
        need_restatement_job(
            stores.needs, MongoRestatePages(runtime.db, "needs", job=NEEDS_JOB),
            page_size=settings.restate_page_size, stuck=runtime.stuck,
        ),
        recipient_restatement_job(
            stores.recipients, MongoRestatePages(runtime.db, "recipients", job=RECIPIENTS_JOB),
            page_size=settings.restate_page_size, stuck=runtime.stuck,
        ),
        organisation_restatement_job(
            stores.organisations, MongoRestatePages(runtime.db, "organisations", job=ORGANISATIONS_JOB),
            page_size=settings.restate_page_size, stuck=runtime.stuck,
        ),
    )

    @runtime.every(settings.restate_interval_seconds, "registry-restate")
    async def restate(_: ServiceRuntime) -> None:
        for restatement in restatements:
            await restatement.run_page()

    return Registry(runtime=runtime, stores=stores, services=services, restatements=restatements)


def create_app(
    settings: RegistrySettings | None = None,
    *,
    clock: Clock | None = None,
    stores: Stores | None = None,
    accounts: AccountDirectory | None = None,
) -> FastAPI:
    """The service's FastAPI application."""
    registry = build(settings or RegistrySettings(), clock=clock, stores=stores, accounts=accounts)
    app = registry.runtime.create_app([build_api()])
    install(app, registry.services)
    app.state.restatements = registry.restatements  # operators and tests run a pass on demand
    return app
