"""Composition root of the pledges service: wires settings, runtime, stores, handlers, routes and sweeps."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from ksbb_kit.clock import Clock
from ksbb_kit.runtime import ServiceRuntime

from ksbb_pledges.adapters.donors import DonorStore
from ksbb_pledges.adapters.ledgers import LedgerStore
from ksbb_pledges.adapters.offers import OfferStore
from ksbb_pledges.api.routes import build_api
from ksbb_pledges.handlers import build_router
from ksbb_pledges.settings import PledgesSettings

TITLE = "KSBB Pledges"
DESCRIPTION = "Donor pledges, need ledger, delivery lifecycle, offers and matching."
OUTBOX_COLLECTIONS = ["ledgers", "donors", "offers"]


def build_runtime(settings: PledgesSettings, *, clock: Clock | None = None) -> tuple[ServiceRuntime, LedgerStore]:
    """The service's runtime (Mongo, Kafka, outbox relay, consumers) and its ledger store."""
    # The handlers need the store and the store needs the runtime, which needs the handlers' routes:
    # the router resolves the store lazily, once it exists.
    bound: list[LedgerStore] = []
    runtime = ServiceRuntime(
        settings,
        title=TITLE,
        description=DESCRIPTION,
        router=build_router(lambda: bound[0]),
        outbox_collections=OUTBOX_COLLECTIONS,
        clock=clock,
    )
    bound.append(LedgerStore(runtime, settings.expiry_policy))
    return runtime, bound[0]


def create_app(settings: PledgesSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The service's FastAPI application."""
    settings = settings or PledgesSettings()
    runtime, ledgers = build_runtime(settings, clock=clock)
    donors = DonorStore(runtime)
    offers = OfferStore(ledgers)

    @runtime.on_startup
    async def indexes(_: ServiceRuntime) -> None:
        await ledgers.create_indexes()

    full_scan_done: list[bool] = []

    @runtime.every(settings.sweep_interval_seconds, "pledge-sweeps")
    async def sweeps(_: ServiceRuntime) -> None:
        await ledgers.sweep_expiry()
        # The first pass after a start scans every ledger (covering any downtime); later passes only
        # the recently changed ones, with a wide margin over the sweep interval.
        lookback = timedelta(seconds=settings.sweep_interval_seconds * 10)
        since = runtime.clock.now() - lookback if full_scan_done else None
        await ledgers.sweep_copies(since=since)
        full_scan_done.append(True)

    app = runtime.create_app([build_api(ledgers, donors, offers)])
    app.state.ledgers = ledgers
    app.state.donors = donors
    app.state.offers = offers
    return app
