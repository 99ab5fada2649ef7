"""Use cases of recipient units: register (race-free duplicate detection), read, change, lifecycle steps,
list; the repair of duplicate-key claims."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from ksbb_contracts.vocab import OrganisationStatus, RecipientKind, RecipientStatus
from ksbb_kit.auth import Principal

from ksbb_registry.app.access import actor_for, author_of, may_act_for, may_manage, require
from ksbb_registry.app.needs import NeedService
from ksbb_registry.app.ports import (
    ArchiveFollowUp,
    ClaimResult,
    Clock,
    DuplicateClaims,
    ListQuery,
    OrganisationStore,
    Page,
    Precondition,
    RecipientStore,
)
from ksbb_registry.domain import duplicates, lifecycle
from ksbb_registry.domain import recipients as rules
from ksbb_registry.domain.areas import Location
from ksbb_registry.domain.catalogue import Suggestion, suggest_needs
from ksbb_registry.domain.change import Change
from ksbb_registry.domain.errors import (
    ConcurrentChange,
    DuplicateRecipient,
    NotFound,
    OrganisationNotActive,
    RuleBroken,
    UnknownOrganisation,
)
from ksbb_registry.domain.lifecycle import Action
from ksbb_registry.domain.organisations import Organisation
from ksbb_registry.domain.recipients import AuditEntry, NewRecipient, Recipient, RecipientPatch

log = logging.getLogger(__name__)
#: The insert of an announced recipient; the held and the conflicting claims of a registration.
_Insert = Callable[[Change[Recipient]], Awaitable[tuple[Recipient, bool]]]
_Claimed = tuple[list[ClaimResult], list[ClaimResult]]


@dataclass(frozen=True)
class RecipientFilters:
    """Optional filters of the recipient list (exact matches, plus whether it has open needs)."""

    kind: RecipientKind | None = None
    status: RecipientStatus | None = None
    kota_code: str | None = None
    kecamatan_code: str | None = None
    kelurahan_code: str | None = None
    organisation_id: str | None = None
    has_open_needs: bool | None = None

    def given(self) -> dict[str, object]:
        """The exact-match filters that were set."""
        return {
            name: value
            for name, value in asdict(self).items()
            if value is not None and name != "has_open_needs"
        }


class RecipientService:
    """Recipient units: registered by their organisation's staff, verified, activated, suspended, archived."""

    def __init__(
        self,
        recipients: RecipientStore,
        organisations: OrganisationStore,
        claims: DuplicateClaims,
        needs: NeedService,
        clock: Clock,
        *,
        on_archived: ArchiveFollowUp | None = None,
    ) -> None:
        self.recipients = recipients
        self.on_archived = on_archived
        self.organisations = organisations
        self.claims = claims
        self.needs = needs
        self.clock = clock

    async def get(self, recipient_id: str) -> Recipient:
        """A recipient with its audit trail (NotFound otherwise)."""
        recipient = await self.recipients.get(recipient_id)
        if recipient is None:
            raise NotFound("recipient", recipient_id)
        return recipient

    async def read(self, recipient_id: str, principal: Principal) -> Recipient:
        """A recipient with its contact, for admins, its organisation's staff and its own account."""
        recipient = await self.get(recipient_id)
        require(may_act_for(principal, recipient))
        return recipient

    async def audit(self, recipient_id: str, principal: Principal) -> list[AuditEntry]:
        """A recipient's audit trail, for admins and its organisation's staff."""
        recipient = await self.get(recipient_id)
        require(may_manage(principal, recipient))
        return recipient.audit

    async def suggestions(self, recipient_id: str, principal: Principal) -> list[Suggestion]:
        """Needs suggested from the recipient's beneficiary counts."""
        recipient = await self.read(recipient_id, principal)
        counts = recipient.beneficiaries
        return suggest_needs(
            recipient.kind, counts.households, counts.people, counts.children, counts.elderly, counts.disabled
        )

    async def register(
        self, recipient_id: str, command: NewRecipient, principal: Principal
    ) -> tuple[Recipient, bool]:
        """Register a recipient for an organisation (its facilitators or admins); a retried create returns
        the first one. Duplicates are refused unless an admin overrides.

        Round trips in the common case: the claims of the duplicate keys and the outbox marker of the new
        document at once (only for a caller and a body that pass the checks needing no data; claims given
        back when the organisation refuses), next to the organisation read (an active organisation read a
        moment ago is reused, see `OrganisationStore.get_recent`), then the document with its events; the
        claims' confirmation follows after the answer, one write for many registrations (the claims sweep
        confirms any a crash left unconfirmed)."""
        actor_refused = _refusal(
            lambda: require(
                actor_for(principal, command.organisation_id) is not None,
                "facilitators register recipients for their own organisation only",
            )
        )
        override = command.duplicate_override_reason
        override_refused = _refusal(
            lambda: require(not override or principal.is_admin, "only admins may override duplicate detection")
        )
        location: Location | None = None
        invalid: RuleBroken | None = None
        try:
            location = rules.validate_new(command)
        except RuleBroken as broken:
            invalid = broken
        keys = rules.keys_of(command, location) if location is not None else None
        claimable = keys is not None and not (actor_refused or override_refused)
        # Claim first, insert second: the unique claim id is what makes concurrent registrations race-free.
        # A retried create is not looked for first: its claims are already its own, and its insert finds
        # the recipient it created (the API replays a retried request's answer before it comes this far).
        async with contextlib.AsyncExitStack() as stack:
            # Claims and marker go out at once; the organisation is read meanwhile (mostly from memory, so it
            # runs in this task rather than in a third one: fewer event-loop turns per registration).
            claiming = asyncio.ensure_future(self._claim_all(
                duplicates.claim_keys(*keys) if claimable and keys else [], recipient_id, stop_at_conflict=not override
            ))
            announcing = asyncio.ensure_future(stack.enter_async_context(
                self.recipients.announced(recipient_id) if claimable else _unannounced(self.recipients)
            ))
            organisation, (held, conflicts), insert = await _all(
                self.organisations.get_recent(command.organisation_id), claiming, announcing
            )
            return await self._register_checked(
                recipient_id, command, principal, organisation, held, conflicts, insert,
                refused=actor_refused or override_refused, invalid=invalid, location=location, keys=keys,
            )

    async def _register_checked(
        self,
        recipient_id: str,
        command: NewRecipient,
        principal: Principal,
        organisation: Organisation | None,
        held: list[ClaimResult],
        conflicts: list[ClaimResult],
        insert: _Insert,
        *,
        refused: RuleBroken | None,
        invalid: RuleBroken | None,
        location: Location | None,
        keys: tuple[str, str | None] | None,
    ) -> tuple[Recipient, bool]:
        """The rest of `register` once the organisation is read and the keys claimed: refuse, or insert."""
        override = command.duplicate_override_reason
        new_claims = [c.key for c in held if c.new]
        if refused is None and organisation is None:
            refused = UnknownOrganisation(
                f"organisation {command.organisation_id} does not exist", field="organisation_id"
            )
        elif refused is None and organisation is not None and organisation.status is not OrganisationStatus.ACTIVE:
            refused = OrganisationNotActive()
        refused = refused or invalid
        if refused is not None:
            await self.claims.release(new_claims, recipient_id)
            raise refused
        if conflicts and (not override or any(c.holder is None for c in conflicts)):
            # A concurrent retry with the same Idempotency-Key may have just created this very recipient.
            created_meanwhile = await self.recipients.get(recipient_id)
            if created_meanwhile is not None:
                return created_meanwhile, False
            await self.claims.release(new_claims, recipient_id)
            raise await self._duplicate_error(next(c for c in conflicts if not override or c.holder is None))
        # Admin override: registered without the contested keys (their holders keep them).
        overridden = list(dict.fromkeys(c.holder for c in conflicts if c.holder))
        assert location is not None and keys is not None  # a body that fails validation was refused above
        change = rules.register(
            recipient_id, command, location, keys, author_of(principal), self.clock.now(), overridden
        )
        try:
            result = await insert(change)
        except BaseException:
            await self.claims.release(new_claims, recipient_id)
            raise
        self.claims.confirm_soon([c.key for c in held], recipient_id)
        return result

    async def change(
        self,
        recipient_id: str,
        patch: RecipientPatch,
        principal: Principal,
        precondition: Precondition | None = None,
    ) -> Recipient:
        """Change a recipient's facts (managers) or contact (also its own account)."""
        changes = patch.changes()
        current = await self.get(recipient_id)
        require(may_act_for(principal, current))
        require(
            may_manage(principal, current) or not set(changes) - {"contact"},
            "a recipient account may change only its contact",
        )
        if "organisation_id" in changes:
            require(principal.is_admin, "only admins move a recipient to another organisation")
            if await self.organisations.get(changes["organisation_id"]) is None:
                raise UnknownOrganisation("organisation does not exist", field="organisation_id")
        changes = rules.complete_changes(current, changes)
        to_claim: list[str] = []
        to_release: list[str] = []
        if "identity_key" in changes:
            new_keys = duplicates.claim_keys(changes["identity_key"], changes["rw_key"])
            to_claim, to_release = duplicates.key_moves(current.claim_keys, new_keys)
        moving = bool(to_claim or to_release)
        # Claim the new keys first, then write the recipient, then release the old keys.
        held, conflicts = await self._claim_all(to_claim, recipient_id, stop_at_conflict=True)
        newly_held = [c.key for c in held if c.new]
        if conflicts:
            await self.claims.release(newly_held, recipient_id)
            raise await self._duplicate_error(conflicts[0])
        author = author_of(principal)
        decided_on = (current.identity_key, current.rw_key) if moving else None

        def decide(recipient: Recipient, version: int) -> Change[Recipient] | None:
            if precondition:
                precondition(recipient.recipient_id, recipient.version)
            return rules.revise(
                recipient, changes, author, self.clock.now(), version, decided_on_keys=decided_on
            )

        try:
            outcome = await self.recipients.update(recipient_id, decide)
            if outcome is None:
                raise _missing(recipient_id)
        except BaseException:
            await self.claims.release(newly_held, recipient_id)
            raise
        recipient, wrote = outcome
        if not wrote:
            await self.claims.release(newly_held, recipient_id)
            return recipient
        await self.claims.confirm(to_claim, recipient_id)
        await self.claims.release(to_release, recipient_id)
        return recipient

    async def transition(
        self,
        recipient_id: str,
        action: Action,
        principal: Principal,
        *,
        reason: str | None,
        document_refs: list[str],
        precondition: Precondition | None = None,
    ) -> Recipient:
        """Move a recipient through its lifecycle (see `domain.lifecycle`); suspension and archive close its
        open needs, archive frees its duplicate keys."""
        current = await self.get(recipient_id)
        require(may_act_for(principal, current) or principal.is_admin)
        author = author_of(principal)

        def decide(recipient: Recipient, version: int) -> Change[Recipient]:
            if precondition:
                precondition(recipient.recipient_id, recipient.version)
            actor = actor_for(principal, recipient.organisation_id)
            return lifecycle.step(
                recipient, action, actor, reason, document_refs, author, self.clock.now(), version
            )

        outcome = await self.recipients.update(recipient_id, decide)
        if outcome is None:
            raise _missing(recipient_id)
        recipient = outcome[0]
        if recipient.status is RecipientStatus.ARCHIVED:
            await self.claims.release_all(recipient_id)  # archived units free their duplicate keys
            await self._after_archive(recipient, author.subject)
        if recipient.pending_need_closure:
            await self.needs.close_needs_of(recipient)
        return recipient

    async def _after_archive(self, recipient: Recipient, by: str) -> None:
        """Run the archive's follow-up (its accounts are marked for disabling); a failure here never undoes the
        archive: the unit keeps its pending marker until the sweep repeats the step."""
        if self.on_archived is None:
            return
        try:
            await self.on_archived(recipient, by)
        except Exception:
            log.exception("archive follow-up of %s failed; the sweep repeats it", recipient.recipient_id)

    async def find(
        self, principal: Principal, filters: RecipientFilters, page: Page
    ) -> tuple[list[Recipient], str | None]:
        """Recipients visible to the caller (admins: all; facilitators: their organisation's)."""
        equals = filters.given()
        if not principal.is_admin:
            require(
                equals.get("organisation_id") in (None, principal.org_id),
                "facilitators list their own organisation's recipients only",
            )
            equals["organisation_id"] = principal.org_id
        query = ListQuery(equals)
        if filters.has_open_needs is not None:
            organisation_id = equals.get("organisation_id")
            with_needs = await self.needs.recipients_with_open_needs(
                organisation_id if isinstance(organisation_id, str) else None
            )
            query = (
                ListQuery(equals, ids_in=with_needs)
                if filters.has_open_needs
                else ListQuery(equals, ids_not_in=with_needs)
            )
        return await self.recipients.find(query, page)

    async def sweep_claims(self) -> int:
        """Repair duplicate-key claims left by a crash between the claim and the recipient write."""
        return await self.claims.sweep()

    async def _claim_all(
        self, keys: list[str], recipient_id: str, *, stop_at_conflict: bool
    ) -> _Claimed:
        """Claim duplicate keys (all at once); returns (held, conflicting).

        With `stop_at_conflict` only the first conflict is reported (the caller gives every new claim back).
        """
        results = await self.claims.claim_many(keys, recipient_id)
        held = [result for result in results if result.held]
        conflicts = [result for result in results if not result.held]
        return held, conflicts[:1] if stop_at_conflict else conflicts

    async def _duplicate_error(self, conflict: ClaimResult) -> RuleBroken:
        """The refusal pointing to the recipient holding a duplicate key."""
        if conflict.holder is None:
            return ConcurrentChange("the duplicate key is changing too often; try again")
        name = conflict.holder_name
        if name is None:
            holder = await self.recipients.get(conflict.holder)
            name = holder.name if holder else None
        return DuplicateRecipient(conflict.holder, name, field=duplicates.claim_field(conflict.key))


@contextlib.asynccontextmanager
async def _unannounced(recipients: RecipientStore) -> AsyncIterator[_Insert]:
    """No marker left in advance (a registration refused before any data is read): the plain insert."""
    yield recipients.insert


async def _all(
    first: Awaitable[Organisation | None], claiming: asyncio.Future[_Claimed], announcing: asyncio.Future[_Insert]
) -> tuple[Organisation | None, _Claimed, _Insert]:
    """`first` awaited here while the two tasks run; all three results, or the first error (as `gather`: the
    other tasks are left to finish, their claims and marker repaired like those of a crash)."""
    try:
        organisation, claimed = await first, await claiming
    except BaseException:
        for task in (claiming, announcing):
            task.add_done_callback(_quiet)
        raise
    return organisation, claimed, await announcing


def _quiet(task: asyncio.Future[Any]) -> None:
    """Read a left task's outcome so that its error is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


def _refusal(check: Callable[[], object]) -> RuleBroken | None:
    """The rule a check breaks (to raise later, in the order the rules are told), or None."""
    try:
        check()
    except RuleBroken as broken:
        return broken
    return None


def _missing(recipient_id: str) -> NotFound:
    """The error when a recipient to change does not exist."""
    return NotFound("recipient", recipient_id, message=f"{recipient_id} does not exist", field="id")
