"""The composition root of the pledges service: runtime, stores, use cases, event handlers, routes, sweeps.

Everything is built here, once, in dependency order. Tests pass a clock or their own stores as keyword
overrides and get every part back from `compose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI
from ksbb_kit.clock import Clock
from ksbb_kit.followers import Follower
from ksbb_kit.restate_pages import MongoRestatePages, RestatePass
from ksbb_kit.runtime import ServiceRuntime

from ksbb_pledges.adapters.copies import MongoPledgeCopies
from ksbb_pledges.adapters.donors import MongoDonorStore
from ksbb_pledges.adapters.ledgers import MongoLedgerStore
from ksbb_pledges.adapters.offers import MongoOfferStore
from ksbb_pledges.adapters.replicas import MongoReplicas
from ksbb_pledges.api import donors as donor_routes
from ksbb_pledges.api import errors as api_errors
from ksbb_pledges.api import ledger as ledger_routes
from ksbb_pledges.api import offers as offer_routes
from ksbb_pledges.api import pledges as pledge_routes
from ksbb_pledges.api.deps import UseCases, attach
from ksbb_pledges.app.donors import DonorService
from ksbb_pledges.app.ledger import LedgerService
from ksbb_pledges.app.offers import OfferService
from ksbb_pledges.app.pledges import PledgeService
from ksbb_pledges.app.ports import DonorStore, LedgerStore, OfferStore, PledgeCopies, Replicas
from ksbb_pledges.app.recovery import ANNOUNCING, RECOVERY_JOB, PledgeRecovery, pledge_of
from ksbb_pledges.app.registry import RegistryFacts
from ksbb_pledges.app.restate import (
    DONORS_JOB,
    LEDGERS_JOB,
    PLEDGES_JOB,
    donor_restatement_job,
    ledger_restatement_job,
    pledge_restatement_job,
)
from ksbb_pledges.handlers import build_router
from ksbb_pledges.settings import PledgesSettings

TITLE = "KSBB Pledges"
DESCRIPTION = "Donor pledges, need ledger, delivery lifecycle, offers and matching."
OUTBOX_COLLECTIONS = ["ledgers", "donors", "offers"]
#: Later copy-repair passes look back this many sweep intervals (a wide margin over one interval).
COPY_LOOKBACK_INTERVALS = 10


@dataclass(frozen=True)
class PledgesService:
    """Every part of one composed pledges service (tests reach the use cases and stores through it)."""

    runtime: ServiceRuntime
    ledger_store: LedgerStore
    copies: PledgeCopies
    replicas: Replicas
    ledger: LedgerService
    pledges: PledgeService
    offers: OfferService
    donors: DonorService
    registry: RegistryFacts
    recovery: PledgeRecovery
    restatement: RestatePass
    pledge_restatement: RestatePass
    donor_restatement: RestatePass
    app: FastAPI


def compose(
    settings: PledgesSettings | None = None,
    *,
    clock: Clock | None = None,
    ledger_store: LedgerStore | None = None,
    copies: PledgeCopies | None = None,
    replicas: Replicas | None = None,
    donor_store: DonorStore | None = None,
    offer_store: OfferStore | None = None,
) -> PledgesService:
    """Build the service; each keyword replaces the part it names (the MongoDB store by default)."""
    settings = settings or PledgesSettings()
    runtime = ServiceRuntime(
        settings, title=TITLE, description=DESCRIPTION, outbox_collections=OUTBOX_COLLECTIONS, clock=clock
    )
    db, outbox, pending = runtime.db, runtime.events, runtime.relay.pending

    # Stores.
    copies = copies or MongoPledgeCopies(db)
    ledger_store = ledger_store or MongoLedgerStore(db, outbox=outbox, pending=pending)
    replicas = replicas or MongoReplicas(db)
    donor_store = donor_store or MongoDonorStore(db, outbox=outbox, pending=pending)
    offer_store = offer_store or MongoOfferStore(db, outbox=outbox, pending=pending)

    # Use cases.
    lookback = timedelta(seconds=settings.sweep_interval_seconds * COPY_LOOKBACK_INTERVALS)
    ledger = LedgerService(
        ledger_store, copies, runtime.clock, settings.expiry_policy, copy_lookback=lookback, stuck=runtime.stuck
    )
    pledges = PledgeService(
        ledger, ledger_store, copies, replicas, runtime.clock, contact_after_delivery=settings.contact_after_delivery
    )
    offers = OfferService(offer_store, ledger, ledger_store, replicas, runtime.clock)
    donors = DonorService(donor_store, runtime.clock)
    registry = RegistryFacts(ledger_store, replicas, runtime.clock)
    recovery = PledgeRecovery(ledger_store, copies, runtime.clock)
    restatement = ledger_restatement_job(
        ledger_store, MongoRestatePages(db, "ledgers", job=LEDGERS_JOB), runtime.clock,
        page_size=settings.restate_page_size, stuck=runtime.stuck,
    )
    pledge_restatement = pledge_restatement_job(
        ledger_store, MongoRestatePages(db, "pledges", job=PLEDGES_JOB), runtime.clock,
        page_size=settings.pledge_restate_page_size, stuck=runtime.stuck,
    )
    donor_restatement = donor_restatement_job(
        donor_store, MongoRestatePages(db, "donors", job=DONORS_JOB), runtime.clock,
        page_size=settings.pledge_restate_page_size, stuck=runtime.stuck,
    )

    # Events in, start-up, sweeps.
    runtime.subscribe(build_router(registry))
    runtime.follow(Follower(
        RECOVERY_JOB, ANNOUNCING, recovery.check, delay_seconds=settings.pledge_recovery_delay_seconds,
        stuck=runtime.stuck, item_id=pledge_of,
    ))

    @runtime.on_startup
    async def indexes(_: ServiceRuntime) -> None:
        await ledger_store.create_indexes()

    @runtime.every(settings.sweep_interval_seconds, "pledge-sweeps")
    async def sweeps(_: ServiceRuntime) -> None:
        await ledger.sweep()

    @runtime.every(settings.restate_interval_seconds, LEDGERS_JOB)
    async def restate(_: ServiceRuntime) -> None:
        await restatement.run_page()

    @runtime.every(settings.pledge_restate_interval_seconds, PLEDGES_JOB)
    async def restate_pledges(_: ServiceRuntime) -> None:
        await pledge_restatement.run_page()
        await donor_restatement.run_page()

    # Routes.
    app = runtime.create_app([donor_routes.router, pledge_routes.router, ledger_routes.router, offer_routes.router])
    attach(
        app,
        UseCases(ledger=ledger, pledges=pledges, offers=offers, donors=donors, idempotency=runtime.idempotency),
    )
    api_errors.install(app)
    return PledgesService(
        runtime=runtime,
        ledger_store=ledger_store,
        copies=copies,
        replicas=replicas,
        ledger=ledger,
        pledges=pledges,
        offers=offers,
        donors=donors,
        registry=registry,
        recovery=recovery,
        restatement=restatement,
        pledge_restatement=pledge_restatement,
        donor_restatement=donor_restatement,
        app=app,
    )


def create_app(settings: PledgesSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service's FastAPI application."""
    return compose(settings, clock=clock).app
