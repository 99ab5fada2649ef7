"""Onboarding use cases: admins invite an organisation's staff, facilitators invite a verified recipient unit's
contact person; revoking a member or archiving a unit disables the account in the identity provider.

The identity provider is called through the `AccountDirectory` port. Invitations run while the request waits
(the provider's invite is idempotent per e-mail, so a retry after a 503 is safe and nothing half-done stays
behind). Disabling never blocks the registry: the record is marked first and a job disables it, retrying while
the provider is down.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from ksbb_contracts.vocab import RecipientStatus
from ksbb_kit.auth import Principal, Role
from ksbb_kit.identity import (
    AccountConflict,
    AccountNotFound,
    IdentityError,
    IdentityUnavailable,
    Invitation,
    InvitedAccount,
)
from ksbb_kit.jobs import StuckItems, for_each_item

from ksbb_registry.app.access import require
from ksbb_registry.app.ports import (
    AccountDirectory,
    Clock,
    ListQuery,
    MemberStore,
    OrganisationStore,
    Page,
    RecipientStore,
)
from ksbb_registry.domain import members as rules
from ksbb_registry.domain.errors import (
    AccountTaken,
    IdentityProviderDown,
    InvitationRefused,
    NotFound,
)
from ksbb_registry.domain.members import AccountKind, AccountState, MemberAccount
from ksbb_registry.domain.organisations import Organisation
from ksbb_registry.domain.recipients import Recipient

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Why the accounts of an archived unit were disabled (recorded on each account).
ARCHIVED_REASON = "recipient archived"


@dataclass(frozen=True)
class NewMember:
    """Who to invite: the person's e-mail and name."""

    email: str
    first_name: str
    last_name: str | None = None


class MemberService:
    """Invited accounts of organisations and recipient units, and their disabling."""

    def __init__(
        self, store: MemberStore, organisations: OrganisationStore, recipients: RecipientStore,
        directory: AccountDirectory, clock: Clock, *, client_id: str | None = None,
        redirect_uri: str | None = None, retry_after_seconds: int = 30,
    ) -> None:
        self.store = store
        self.organisations = organisations
        self.recipients = recipients
        self.directory = directory
        self.clock = clock
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.retry_after_seconds = retry_after_seconds

    # -- inviting ----------------------------------------------------------------------------------

    async def invite_staff(self, organisation_id: str, person: NewMember, principal: Principal) -> MemberAccount:
        """An admin invites a staff member of an active facilitator organisation (role facilitator, org_id)."""
        require(principal.is_admin, "only administrators invite an organisation's staff")
        organisation = await self._organisation(organisation_id)
        rules.check_staff_invitable(organisation.status)
        invitation = self._invitation(person, Role.FACILITATOR, org_id=organisation_id)
        outcome = await self._identity(self.directory.invite(invitation))
        return await self._record(outcome, AccountKind.STAFF, organisation_id, None, person, principal)

    async def invite_contact(self, recipient_id: str, person: NewMember, principal: Principal) -> MemberAccount:
        """A facilitator of the unit's own organisation invites its contact person once the unit is verified
        (role recipient, recipient_id)."""
        recipient = await self._recipient(recipient_id)
        require(
            principal.role is Role.FACILITATOR and principal.is_facilitator_of(recipient.organisation_id),
            "only a facilitator of the recipient's own organisation invites its contact person",
        )
        rules.check_contact_invitable(recipient.status)
        invitation = self._invitation(person, Role.RECIPIENT, recipient_id=recipient_id)
        outcome = await self._identity(self.directory.invite(invitation))
        return await self._record(
            outcome, AccountKind.RECIPIENT_CONTACT, recipient.organisation_id, recipient_id, person, principal
        )

    # -- reading -----------------------------------------------------------------------------------

    async def staff(
        self, organisation_id: str, principal: Principal, page: Page
    ) -> tuple[list[MemberAccount], str | None]:
        """An organisation's invited staff (admins, the organisation's own facilitators)."""
        require(principal.is_admin or principal.is_facilitator_of(organisation_id))
        await self._organisation(organisation_id)
        query = ListQuery({"organisation_id": organisation_id, "kind": AccountKind.STAFF.value})
        return await self.store.find(query, page)

    async def contacts(
        self, recipient_id: str, principal: Principal, page: Page
    ) -> tuple[list[MemberAccount], str | None]:
        """A recipient unit's invited accounts (admins, the unit's organisation's facilitators)."""
        recipient = await self._recipient(recipient_id)
        require(principal.is_admin or principal.is_facilitator_of(recipient.organisation_id))
        return await self.store.find(ListQuery({"recipient_id": recipient_id}), page)

    # -- revoking ----------------------------------------------------------------------------------

    async def revoke_staff(
        self, organisation_id: str, account_id: str, principal: Principal, reason: str | None
    ) -> MemberAccount:
        """An admin revokes a staff member: the account is disabled now, or by the job if the provider is down."""
        require(principal.is_admin, "only administrators revoke an organisation's staff")
        account = await self._account(account_id, kind=AccountKind.STAFF, organisation_id=organisation_id)
        return await self._revoke(account, principal, reason)

    async def revoke_contact(
        self, recipient_id: str, account_id: str, principal: Principal, reason: str | None
    ) -> MemberAccount:
        """Admins or the unit's own facilitators revoke a recipient unit's account."""
        recipient = await self._recipient(recipient_id)
        require(principal.is_admin or principal.is_facilitator_of(recipient.organisation_id))
        account = await self._account(account_id, kind=AccountKind.RECIPIENT_CONTACT, recipient_id=recipient_id)
        return await self._revoke(account, principal, reason)

    async def recipient_archived(self, recipient: Recipient, by: str) -> int:
        """Mark the accounts of an archived unit for disabling (idempotent; the job disables them)."""
        if recipient.status is not RecipientStatus.ARCHIVED:
            return 0
        return await self.store.revoke_of_recipient(
            recipient.recipient_id, by=by, reason=ARCHIVED_REASON, at=self.clock.now()
        )

    async def disable_pending(self, *, stuck: StuckItems | None = None) -> int:
        """The job: mark accounts of units archived since the last run (also those a crash left between the
        archive and its follow-up), then disable every marked account; one failing account never stops the rest.

        Runs before the need-closure repair, which clears the archived units' pending marker."""
        archived = [r async for r in self.recipients.awaiting_need_closure() if r.status is RecipientStatus.ARCHIVED]
        await for_each_item(archived, lambda r: self.recipient_archived(r, "system"), job="account-revocation",
                            item_id=lambda r: r.recipient_id, stuck=stuck)
        run = await for_each_item(self.store.awaiting_disable(), self._disable, job="account-disable",
                                  item_id=lambda a: a.account_id, stuck=stuck)
        return sum(run.results)

    # -- helpers -----------------------------------------------------------------------------------

    async def _revoke(self, account: MemberAccount, principal: Principal, reason: str | None) -> MemberAccount:
        marked = rules.revoke(account, by=principal.subject, reason=reason, at=self.clock.now())
        if marked is not None and await self.store.replace_if(marked, AccountState.INVITED):
            account = marked
        if account.state is AccountState.DISABLING:
            try:
                await self._disable(account)
            except IdentityError as exc:  # the job retries; the revocation itself is recorded
                log.warning("account %s stays marked for disabling: %s", account.account_id, exc)
        return await self.store.get(account.account_id) or account

    async def _disable(self, account: MemberAccount) -> int:
        try:
            await self.directory.disable(account.account_id)
        except AccountNotFound:
            pass  # deleted in the identity provider: nothing left that could sign in
        return int(await self.store.replace_if(rules.disabled(account, self.clock.now()), AccountState.DISABLING))

    def _invitation(self, person: NewMember, role: Role, **link: str) -> Invitation:
        try:
            return Invitation.model_validate({
                "email": person.email, "first_name": person.first_name, "last_name": person.last_name,
                "role": role, "client_id": self.client_id, "redirect_uri": self.redirect_uri, **link,
            })
        except ValueError as exc:
            raise InvitationRefused(f"invalid invitation: {exc}", field="email") from exc

    async def _record(
        self, outcome: InvitedAccount, kind: AccountKind, organisation_id: str, recipient_id: str | None,
        person: NewMember, principal: Principal,
    ) -> MemberAccount:
        account = rules.invited(
            outcome.account.id, kind, organisation_id, recipient_id, email=person.email,
            first_name=person.first_name, last_name=person.last_name, by=principal.subject,
            at=self.clock.now(), email_sent=outcome.email_sent,
        )
        previous = await self.store.get(account.account_id)
        if previous is not None and previous.state is AccountState.INVITED and not outcome.created:
            return previous  # the same invitation again: the first record stands
        await self.store.put(account)
        return account

    async def _identity(self, call: Awaitable[T]) -> T:
        """Run an identity-provider call, its failures as the registry's rule errors."""
        try:
            return await call
        except IdentityUnavailable as exc:
            log.warning("identity provider unavailable: %s", exc)
            raise IdentityProviderDown(self.retry_after_seconds) from exc
        except AccountConflict as exc:
            raise AccountTaken() from exc
        except IdentityError as exc:
            raise InvitationRefused(str(exc), field=exc.field or "email") from exc

    async def _organisation(self, organisation_id: str) -> Organisation:
        organisation = await self.organisations.get(organisation_id)
        if organisation is None:
            raise NotFound("organisation", organisation_id, field="id")
        return organisation

    async def _recipient(self, recipient_id: str) -> Recipient:
        recipient = await self.recipients.get(recipient_id)
        if recipient is None:
            raise NotFound("recipient", recipient_id, field="id")
        return recipient

    async def _account(self, account_id: str, **owner: str) -> MemberAccount:
        account = await self.store.get(account_id)
        if account is None or any(getattr(account, name) != value for name, value in owner.items()):
            raise NotFound("account", account_id, field="account_id")
        return account

