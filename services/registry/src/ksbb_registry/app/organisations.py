"""Use cases of facilitator organisations: register, read, change, suspend and reinstate, list."""

from __future__ import annotations

from ksbb_contracts.vocab import OrganisationStatus
from ksbb_kit.auth import Principal

from ksbb_registry.app.access import author_of, require
from ksbb_registry.app.ports import Clock, Decide, ListQuery, OrganisationStore, Page, Precondition
from ksbb_registry.domain import organisations as rules
from ksbb_registry.domain.change import Change
from ksbb_registry.domain.errors import NotFound
from ksbb_registry.domain.organisations import NewOrganisation, Organisation, OrganisationPatch


def _missing(organisation_id: str) -> NotFound:
    """The error when an organisation to change does not exist."""
    return NotFound("organisation", organisation_id, message=f"{organisation_id} does not exist", field="id")


class OrganisationService:
    """Facilitator organisations: admins register and manage them; their staff read their own."""

    def __init__(self, store: OrganisationStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def get(self, organisation_id: str) -> Organisation:
        """An organisation (NotFound otherwise)."""
        organisation = await self.store.get(organisation_id)
        if organisation is None:
            raise NotFound("organisation", organisation_id)
        return organisation

    async def read(self, organisation_id: str, principal: Principal) -> Organisation:
        """An organisation as admins and its own staff may read it."""
        require(principal.is_admin or principal.is_facilitator_of(organisation_id))
        return await self.get(organisation_id)

    async def register(self, organisation_id: str, command: NewOrganisation) -> tuple[Organisation, bool]:
        """Register a facilitator organisation (admins); a retried create returns the first one."""
        return await self.store.insert(rules.register(organisation_id, command, self.clock.now()))

    async def change(
        self, organisation_id: str, patch: OrganisationPatch, precondition: Precondition | None = None
    ) -> Organisation:
        """Change an organisation's facts or contact."""
        changes = patch.changes()

        def decide(current: Organisation, version: int) -> Change[Organisation] | None:
            if precondition:
                precondition(current.organisation_id, current.version)
            return rules.revise(current, changes, version)

        return await self._update(organisation_id, decide)

    async def set_status(
        self, organisation_id: str, target: OrganisationStatus, reason: str, principal: Principal
    ) -> Organisation:
        """Suspend or reinstate an organisation (admins)."""
        author = author_of(principal)

        def decide(current: Organisation, version: int) -> Change[Organisation]:
            return rules.change_status(current, target, reason, author, self.clock.now(), version)

        return await self._update(organisation_id, decide)

    async def find(
        self, principal: Principal, *, status: OrganisationStatus | None, page: Page
    ) -> tuple[list[Organisation], str | None]:
        """Organisations visible to the caller (admins: all; facilitators: their own)."""
        equals: dict[str, object] = {}
        if status:
            equals["status"] = status
        if not principal.is_admin:
            equals["organisation_id"] = principal.org_id
        return await self.store.find(ListQuery(equals), page)

    async def _update(self, organisation_id: str, decide: Decide[Organisation]) -> Organisation:
        outcome = await self.store.update(organisation_id, decide)
        if outcome is None:
            raise _missing(organisation_id)
        return outcome[0]
