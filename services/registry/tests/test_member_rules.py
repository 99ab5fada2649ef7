"""Unit tests of onboarding (no I/O): who may invite whom, verified-only contacts, identity-provider failures,
revocation and archive disabling the accounts through the job (nothing lost while the provider is down)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from ksbb_contracts.vocab import OrganisationKind, OrganisationStatus, RecipientStatus
from ksbb_kit.auth import Principal, Role
from ksbb_kit.clock import ManualClock
from ksbb_kit.identity import (
    Account,
    AccountConflict,
    IdentityError,
    IdentityUnavailable,
    Invitation,
    InvitedAccount,
)
from ksbb_registry.api.errors import api_error
from ksbb_registry.app.members import MemberService, NewMember
from ksbb_registry.app.ports import ListQuery, Page
from ksbb_registry.domain import members as rules
from ksbb_registry.domain.errors import (
    AccountTaken,
    IdentityProviderDown,
    InvitationRefused,
    NotFound,
    NotPermitted,
    OrganisationNotActive,
    RecipientNotVerified,
)
from ksbb_registry.domain.members import AccountKind, AccountState, MemberAccount
from ksbb_registry.domain.organisations import NewOrganisation, Organisation, OrganisationContact, register
from ksbb_registry.domain.recipients import Recipient

from .builders import NOW, recipient

pytestmark = pytest.mark.unit

ADMIN = Principal(subject="admin-1", role=Role.ADMIN)
OWN_STAFF = Principal(subject="staff-1", role=Role.FACILITATOR, org_id="org_1")
OTHER_STAFF = Principal(subject="staff-2", role=Role.FACILITATOR, org_id="org_2")
CONTACT = Principal(subject="contact-1", role=Role.RECIPIENT, recipient_id="rcp_1")
DONOR = Principal(subject="donor-1", role=Role.DONOR)
PERSON = NewMember(email="budi@lembaga.example", first_name="Budi")


def organisation(status: OrganisationStatus = OrganisationStatus.ACTIVE) -> Organisation:
    """Facilitator organisation org_1."""
    command = NewOrganisation(name="Lembaga Uji", kind=OrganisationKind.NGO,
                              contact=OrganisationContact(name="Sekretariat", email="k@lembaga.example"),
                              area_codes=["31.71"])
    return register("org_1", command, NOW).after.model_copy(update={"status": status})


class Aggregates:
    """Organisations or recipients by id (only what onboarding reads)."""

    def __init__(self, *items: Any) -> None:
        self.items = {getattr(item, "organisation_id" if isinstance(item, Organisation) else "recipient_id"): item
                      for item in items}

    async def get(self, aggregate_id: str) -> Any:
        return self.items.get(aggregate_id)

    async def awaiting_need_closure(self) -> AsyncIterator[Recipient]:
        for item in self.items.values():
            if getattr(item, "pending_need_closure", False):
                yield item


class Records:
    """An in-memory MemberStore."""

    def __init__(self) -> None:
        self.rows: dict[str, MemberAccount] = {}

    async def get(self, account_id: str) -> MemberAccount | None:
        return self.rows.get(account_id)

    async def put(self, account: MemberAccount) -> None:
        self.rows[account.account_id] = account

    async def replace_if(self, account: MemberAccount, expected: AccountState) -> bool:
        current = self.rows.get(account.account_id)
        if current is None or current.state is not expected:
            return False
        self.rows[account.account_id] = account
        return True

    async def revoke_of_recipient(self, recipient_id: str, *, by: str, reason: str, at: datetime) -> int:
        marked = 0
        for key, row in list(self.rows.items()):
            if row.recipient_id == recipient_id and row.state is AccountState.INVITED:
                self.rows[key] = row.model_copy(update={"state": AccountState.DISABLING, "disabled_by": by,
                                                        "disable_reason": reason, "disable_requested_at": at})
                marked += 1
        return marked

    async def awaiting_disable(self) -> AsyncIterator[MemberAccount]:
        for row in list(self.rows.values()):
            if row.state is AccountState.DISABLING:
                yield row

    async def find(self, query: ListQuery, page: Page) -> tuple[list[MemberAccount], str | None]:
        found = [row for row in self.rows.values()
                 if all(getattr(row, name) == value for name, value in query.equals.items())]
        return sorted(found, key=lambda row: row.account_id)[: page.limit], None


class Directory:
    """An identity provider that records calls; `down` makes every call fail like an outage."""

    def __init__(self) -> None:
        self.invitations: list[Invitation] = []
        self.disabled: list[str] = []
        self.down = False
        self.refuse: IdentityError | None = None
        self.broken_ids: set[str] = set()

    async def invite(self, invitation: Invitation) -> InvitedAccount:
        if self.down:
            raise IdentityUnavailable("connection refused")
        if self.refuse:
            raise self.refuse
        self.invitations.append(invitation)
        account = Account(id=f"kc-{invitation.email}", email=invitation.email, org_id=invitation.org_id,
                          recipient_id=invitation.recipient_id)
        first = sum(1 for i in self.invitations if i.email == invitation.email) == 1
        return InvitedAccount(account=account, created=first, email_sent=first)

    async def disable(self, account_id: str) -> None:
        if self.down:
            raise IdentityUnavailable("connection refused")
        if account_id in self.broken_ids:
            raise IdentityError("something odd", status=400)
        self.disabled.append(account_id)

    async def find_by_email(self, email: str) -> Account | None:
        return None


def service(
    org_status: OrganisationStatus = OrganisationStatus.ACTIVE,
    recipient_status: RecipientStatus = RecipientStatus.VERIFIED,
    **recipient_fields: Any,
) -> tuple[MemberService, Records, Directory]:
    records, directory = Records(), Directory()
    members = MemberService(
        records, Aggregates(organisation(org_status)),  # type: ignore[arg-type]
        Aggregates(recipient(recipient_status, **recipient_fields)),  # type: ignore[arg-type]
        directory, ManualClock(NOW), client_id="ksbb-portal", retry_after_seconds=17,
    )
    return members, records, directory


async def test_an_admin_invites_staff_with_role_facilitator_and_the_organisation_link() -> None:
    members, records, directory = service()
    account = await members.invite_staff("org_1", PERSON, ADMIN)
    [invitation] = directory.invitations
    assert (invitation.role, invitation.org_id, invitation.recipient_id, invitation.client_id) == (
        Role.FACILITATOR, "org_1", None, "ksbb-portal")
    assert (account.kind, account.state, account.invited_by, account.email_sent) == (
        AccountKind.STAFF, AccountState.INVITED, "admin-1", True)
    assert records.rows[account.account_id] == account


async def test_inviting_the_same_person_again_keeps_the_first_record() -> None:
    members, records, _ = service()
    first = await members.invite_staff("org_1", PERSON, ADMIN)
    again = await members.invite_staff("org_1", PERSON, ADMIN)
    assert again == first and len(records.rows) == 1


@pytest.mark.parametrize("caller", [OWN_STAFF, OTHER_STAFF, CONTACT, DONOR], ids=lambda p: p.subject)
async def test_only_admins_invite_staff(caller: Principal) -> None:
    members, records, directory = service()
    with pytest.raises(NotPermitted):
        await members.invite_staff("org_1", PERSON, caller)
    assert not directory.invitations and not records.rows


async def test_no_staff_is_invited_into_a_suspended_or_unknown_organisation() -> None:
    members, _, directory = service(org_status=OrganisationStatus.SUSPENDED)
    with pytest.raises(OrganisationNotActive):
        await members.invite_staff("org_1", PERSON, ADMIN)
    with pytest.raises(NotFound):
        await members.invite_staff("org_9", PERSON, ADMIN)
    assert not directory.invitations


@pytest.mark.parametrize("status", [RecipientStatus.VERIFIED, RecipientStatus.ACTIVE])
async def test_the_own_facilitator_invites_a_verified_units_contact_as_recipient(status: RecipientStatus) -> None:
    members, _, directory = service(recipient_status=status)
    account = await members.invite_contact("rcp_1", PERSON, OWN_STAFF)
    [invitation] = directory.invitations
    assert (invitation.role, invitation.recipient_id, invitation.org_id) == (Role.RECIPIENT, "rcp_1", None)
    assert (account.kind, account.organisation_id, account.recipient_id) == (
        AccountKind.RECIPIENT_CONTACT, "org_1", "rcp_1")


@pytest.mark.parametrize("status", [RecipientStatus.REGISTERED, RecipientStatus.SUSPENDED, RecipientStatus.ARCHIVED])
async def test_a_unit_not_verified_gets_no_account(status: RecipientStatus) -> None:
    members, records, directory = service(recipient_status=status)
    with pytest.raises(RecipientNotVerified) as refused:
        await members.invite_contact("rcp_1", PERSON, OWN_STAFF)
    assert refused.value.status == status.value and refused.value.field == "recipient_id"
    assert not directory.invitations and not records.rows


@pytest.mark.parametrize("caller", [ADMIN, OTHER_STAFF, CONTACT, DONOR], ids=lambda p: p.subject)
async def test_only_a_facilitator_of_the_units_organisation_invites_its_contact(caller: Principal) -> None:
    members, _, directory = service()
    with pytest.raises(NotPermitted):
        await members.invite_contact("rcp_1", PERSON, caller)
    assert not directory.invitations


async def test_identity_provider_failures_become_rule_errors_and_store_nothing() -> None:
    members, records, directory = service()
    directory.down = True
    with pytest.raises(IdentityProviderDown) as down:
        await members.invite_staff("org_1", PERSON, ADMIN)
    error = api_error(down.value)
    assert (error.status, error.body.code, error.headers) == (503, "identity_provider_unavailable",
                                                              {"Retry-After": "17"})
    directory.down = False
    directory.refuse = AccountConflict("tied elsewhere", account=Account(id="kc-x", org_id="org_2"))
    with pytest.raises(AccountTaken) as taken:
        await members.invite_staff("org_1", PERSON, ADMIN)
    assert (api_error(taken.value).status, api_error(taken.value).body.code) == (409, "account_conflict")
    directory.refuse = IdentityError("bad email", status=400, field="email")
    with pytest.raises(InvitationRefused):
        await members.invite_staff("org_1", PERSON, ADMIN)
    assert not records.rows


async def test_a_revocation_while_the_provider_is_down_is_kept_and_the_job_disables_later() -> None:
    members, records, directory = service()
    account = await members.invite_staff("org_1", PERSON, ADMIN)
    directory.down = True
    revoked = await members.revoke_staff("org_1", account.account_id, ADMIN, "left the organisation")
    assert revoked.state is AccountState.DISABLING and revoked.disable_reason == "left the organisation"
    assert await members.disable_pending() == 0  # still down: stays marked, nothing lost
    directory.down = False
    assert await members.disable_pending() == 1
    assert directory.disabled == [account.account_id]
    assert records.rows[account.account_id].state is AccountState.DISABLED
    again = await members.revoke_staff("org_1", account.account_id, ADMIN, None)  # idempotent
    assert again.state is AccountState.DISABLED and directory.disabled == [account.account_id]


async def test_revoking_needs_the_right_caller_and_the_right_owner() -> None:
    members, _, _ = service()
    staff = await members.invite_staff("org_1", PERSON, ADMIN)
    with pytest.raises(NotPermitted):
        await members.revoke_staff("org_1", staff.account_id, OWN_STAFF, None)
    with pytest.raises(NotFound):
        await members.revoke_staff("org_2", staff.account_id, ADMIN, None)
    with pytest.raises(NotFound):  # a staff account is not a unit's account
        await members.revoke_contact("rcp_1", staff.account_id, OWN_STAFF, None)


async def test_an_archived_unit_s_accounts_are_disabled_by_the_job_even_if_the_follow_up_never_ran() -> None:
    members, records, directory = service(recipient_status=RecipientStatus.ACTIVE)
    contact = await members.invite_contact("rcp_1", PERSON, OWN_STAFF)
    other = await members.invite_contact("rcp_1", NewMember(email="sari@rw05.example", first_name="Sari"),
                                         OWN_STAFF)
    archived = recipient(RecipientStatus.ARCHIVED, pending_need_closure=True)
    members.recipients = Aggregates(archived)  # type: ignore[assignment]  # archived; its follow-up was lost
    directory.broken_ids = {contact.account_id}  # one account the provider refuses must not stop the other
    assert await members.disable_pending() == 1
    assert directory.disabled == [other.account_id]
    assert records.rows[contact.account_id].state is AccountState.DISABLING  # retried on the next run
    assert records.rows[other.account_id].disable_reason == "recipient archived"
    directory.broken_ids = set()
    assert await members.disable_pending() == 1
    assert {row.state for row in records.rows.values()} == {AccountState.DISABLED}


def test_contact_invitations_need_a_verified_or_active_unit() -> None:
    allowed = {status for status in RecipientStatus if _allowed(status)}
    assert allowed == {RecipientStatus.VERIFIED, RecipientStatus.ACTIVE}


def _allowed(status: RecipientStatus) -> bool:
    try:
        rules.check_contact_invitable(status)
    except RecipientNotVerified:
        return False
    return True


def test_revoke_is_idempotent_and_records_who_and_why() -> None:
    record = rules.invited("kc-1", AccountKind.STAFF, "org_1", None, email="Budi@Lembaga.example",
                           first_name="Budi", last_name=None, by="admin-1", at=NOW, email_sent=True)
    assert record.email == "budi@lembaga.example"
    marked = rules.revoke(record, by="admin-2", reason="left", at=NOW)
    assert marked is not None and (marked.state, marked.disabled_by, marked.disable_reason) == (
        AccountState.DISABLING, "admin-2", "left")
    assert rules.revoke(marked, by="admin-2", reason="left", at=NOW) is None
    assert rules.revoke(rules.disabled(marked, NOW), by="x", reason=None, at=NOW) is None


async def test_inviting_a_revoked_member_again_restores_the_record() -> None:
    members, records, directory = service()
    first = await members.invite_staff("org_1", PERSON, ADMIN)
    await members.revoke_staff("org_1", first.account_id, ADMIN, "mistake")
    assert records.rows[first.account_id].state is AccountState.DISABLED
    again = await members.invite_staff("org_1", PERSON, ADMIN)
    assert (again.account_id, again.state, again.disable_reason) == (first.account_id, AccountState.INVITED, None)
    assert len(directory.invitations) == 2  # the provider enabled the same account again
