"""Event handlers of the registry service: how it reacts to other services' events."""

from __future__ import annotations

from ksbb_contracts import CloudEvent
from ksbb_contracts.events.pledges import NeedLedgerChanged
from ksbb_kit.consumer import EventRouter

from ksbb_registry.app.needs import NeedService
from ksbb_registry.domain.needs import Ledger


class RegistryHandlers:
    """One handler per consumed event type, each calling one use case."""

    def __init__(self, needs: NeedService) -> None:
        self.needs = needs

    async def on_ledger_changed(self, event: NeedLedgerChanged, envelope: CloudEvent) -> None:
        """The pledges service's quantities of a need changed."""
        # Idempotent: the need stores the last ledger_version and ignores older or repeated ones — unless
        # their figures differ (the owner reused a version after a crash, or restated its state).
        ledger = Ledger(
            requested=event.requested,
            committed=event.committed,
            in_transit=event.in_transit,
            delivered=event.delivered,
            ledger_version=event.ledger_version,
        )
        await self.needs.apply_ledger(event.need_id, ledger, restated=event.restated)


def build_router(needs: NeedService) -> EventRouter:
    """The registry's event routes."""
    handlers = RegistryHandlers(needs)
    router = EventRouter("registry")
    router.on(NeedLedgerChanged)(handlers.on_ledger_changed)
    return router
