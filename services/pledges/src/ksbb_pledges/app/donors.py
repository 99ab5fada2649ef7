"""Donor profiles: a donor creates, updates and reads their own profile."""

from __future__ import annotations

from typing import Any

from ksbb_kit.auth import Principal
from ksbb_kit.clock import Clock

from ksbb_pledges.app.access import donor_id_for
from ksbb_pledges.app.ports import DonorStore
from ksbb_pledges.domain.donors import Donor, DonorUpdate, update_profile
from ksbb_pledges.domain.errors import DonorNotFound


class DonorService:
    """The caller's own donor profile; its public part and its contact are published with each change."""

    def __init__(self, store: DonorStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def put(self, principal: Principal, profile: dict[str, Any]) -> tuple[str, Donor]:
        """Create or replace the caller's profile (kind, display_name, show_name, contact); (donor id, stored)."""
        donor_id = donor_id_for(principal.subject)
        wanted = {**profile, "subject": principal.subject}

        def decide(current: Donor | None) -> DonorUpdate:
            return update_profile(donor_id, current, wanted, self.clock.now())

        return donor_id, await self.store.put(donor_id, decide)

    async def get(self, principal: Principal) -> tuple[str, Donor]:
        """The caller's profile; DonorNotFound before the first put."""
        donor_id = donor_id_for(principal.subject)
        stored = await self.store.get(donor_id)
        if stored is None:
            raise DonorNotFound()
        return donor_id, stored
