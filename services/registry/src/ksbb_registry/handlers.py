"""Event handlers of the registry service: how it reacts to other services' events."""

from __future__ import annotations

from collections.abc import Callable

from ksbb_contracts import CloudEvent
from ksbb_contracts.events.pledges import NeedLedgerChanged
from ksbb_kit.consumer import EventRouter

from ksbb_registry.service import RegistryService


def build_router(service: Callable[[], RegistryService]) -> EventRouter:
    """The registry service's event routes; `service` resolves the wired service object."""
    router = EventRouter("registry")

    @router.on(NeedLedgerChanged)
    async def on_ledger_changed(event: NeedLedgerChanged, envelope: CloudEvent) -> None:
        # Idempotent: the need stores the last ledger_version and ignores older or repeated ones.
        await service().apply_ledger(event)

    return router
