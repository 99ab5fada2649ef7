"""MongoDB store of facilitator organisations."""

from __future__ import annotations

import time
from typing import Any

from ksbb_contracts.vocab import OrganisationStatus

from ksbb_registry.adapters.store import AggregateCollection, Documents
from ksbb_registry.app.ports import Decide
from ksbb_registry.domain.change import Change
from ksbb_registry.domain.organisations import Organisation

#: How organisations are stored (collection `organisations`, id as `_id`).
ORGANISATION_DOCUMENTS = Documents(Organisation, "organisation_id")
#: How long an active organisation read for a registration's check is reused (seconds; 0: never).
ACTIVE_CACHE_SECONDS = 1.0


class OrganisationCollection(AggregateCollection[Organisation]):
    """The `organisations` collection; active organisations are remembered briefly for `get_recent`.

    Why a cache is safe here: a registration's organisation check has always been a read before the insert,
    not a guard on it, so a suspension landing between the two was never seen. Reusing an active
    organisation read at most `active_for` seconds ago widens that window by a bounded amount on other
    replicas; a write through this store forgets what it remembered at once, and an organisation that is
    missing or not active is always read again (a new or reinstated one is usable at once).
    """

    def __init__(self, *args: Any, active_for: float = ACTIVE_CACHE_SECONDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.active_for = active_for
        #: organisation id -> (monotonic time its read began, the organisation then active)
        self._active: dict[str, tuple[float, Organisation]] = {}
        #: Counts this store's writes: a read overtaken by one is not remembered.
        self._writes = 0

    async def get_recent(self, organisation_id: str) -> Organisation | None:
        """The organisation; an active one may be what a read at most `active_for` seconds ago found."""
        remembered = self._active.get(organisation_id)
        began = time.monotonic()
        if remembered is not None and began - remembered[0] < self.active_for:
            return remembered[1]
        writes = self._writes
        organisation = await self.get(organisation_id)
        if (
            organisation is not None
            and organisation.status is OrganisationStatus.ACTIVE
            and self.active_for > 0
            and writes == self._writes
        ):
            self._active[organisation_id] = (began, organisation)
        else:
            self._active.pop(organisation_id, None)
        return organisation

    def _forget(self, organisation_id: str) -> None:
        self._writes += 1
        self._active.pop(organisation_id, None)

    async def insert(self, change: Change[Organisation]) -> tuple[Organisation, bool]:
        """Insert (see `AggregateCollection.insert`), forgetting what was remembered of it."""
        self._forget(change.after.organisation_id)
        try:
            return await super().insert(change)
        finally:
            self._forget(change.after.organisation_id)

    async def update(self, aggregate_id: str, decide: Decide[Organisation]) -> tuple[Organisation, bool] | None:
        """Update (see `AggregateCollection.update`), forgetting what was remembered of it before and after."""
        self._forget(aggregate_id)
        try:
            return await super().update(aggregate_id, decide)
        finally:
            self._forget(aggregate_id)
