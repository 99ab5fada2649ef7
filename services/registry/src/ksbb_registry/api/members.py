"""Routes of onboarding: an organisation's staff (/v1/organisations/{id}/members) and a recipient unit's
accounts (/v1/recipients/{id}/accounts). Responses carry e-mails: staff-only routes, never in events."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ksbb_registry.api import schemas
from ksbb_registry.api.deps import AdminOnly, Cursor, Idempotency, IdempotencyKey, Limit, Members, Staff, page
from ksbb_registry.api.responses import idempotent_create
from ksbb_registry.app.members import NewMember
from ksbb_registry.domain.members import AccountKind, AccountState, MemberAccount

router = APIRouter(tags=["members"])

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class MemberInvite(BaseModel):
    """Who to invite; Keycloak e-mails them a link to set a password (Bahasa Indonesia first)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(pattern=EMAIL_PATTERN, max_length=254, description="The person's e-mail (their sign-in).")
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)


class MemberOut(BaseModel):
    """An invited account (staff member or recipient contact) as the registry records it."""

    account_id: str = Field(description="The identity provider's account id (the token's `sub`).")
    kind: AccountKind
    organisation_id: str
    recipient_id: str | None = None
    email: str
    first_name: str
    last_name: str | None = None
    state: AccountState
    invited_by: str
    invited_at: datetime
    email_sent: bool
    disable_reason: str | None = None
    disabled_at: datetime | None = None


def member_out(account: MemberAccount) -> MemberOut:
    """Response model of an account record."""
    return MemberOut.model_validate(account.model_dump())


def _person(body: MemberInvite) -> NewMember:
    return NewMember(email=body.email.lower(), first_name=body.first_name, last_name=body.last_name)


@router.post(
    "/organisations/{organisation_id}/members",
    status_code=201,
    response_model=MemberOut,
    summary="Invite a staff member of a facilitator organisation (admin)",
)
async def invite_member(
    organisation_id: str,
    body: MemberInvite,
    principal: AdminOnly,
    members: Members,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def invite(_: str) -> tuple[MemberOut, str, int]:
        account = await members.invite_staff(organisation_id, _person(body), principal)
        return member_out(account), account.account_id, 0

    return await idempotent_create(
        idempotency, principal.subject, f"invite_member:{organisation_id}", idempotency_key, body, "acc", invite
    )


@router.get(
    "/organisations/{organisation_id}/members",
    response_model=schemas.Page[MemberOut],
    summary="List an organisation's invited staff (admin, own facilitator)",
)
async def list_members(
    organisation_id: str, principal: Staff, members: Members, limit: Limit = 50, cursor: Cursor = None
) -> schemas.Page[MemberOut]:
    found, next_cursor = await members.staff(organisation_id, principal, page(limit, cursor))
    return schemas.Page(items=[member_out(a) for a in found], next_cursor=next_cursor)


@router.delete(
    "/organisations/{organisation_id}/members/{account_id}",
    response_model=MemberOut,
    summary="Revoke a staff member: the account is disabled (admin)",
)
async def revoke_member(
    organisation_id: str, account_id: str, principal: AdminOnly, members: Members
) -> MemberOut:
    return member_out(await members.revoke_staff(organisation_id, account_id, principal, "member revoked"))


@router.post(
    "/recipients/{recipient_id}/accounts",
    status_code=201,
    response_model=MemberOut,
    summary="Invite a verified recipient unit's contact person (facilitator of its organisation)",
)
async def invite_recipient_account(
    recipient_id: str,
    body: MemberInvite,
    principal: Staff,
    members: Members,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def invite(_: str) -> tuple[MemberOut, str, int]:
        account = await members.invite_contact(recipient_id, _person(body), principal)
        return member_out(account), account.account_id, 0

    return await idempotent_create(
        idempotency, principal.subject, f"invite_account:{recipient_id}", idempotency_key, body, "acc", invite
    )


@router.get(
    "/recipients/{recipient_id}/accounts",
    response_model=schemas.Page[MemberOut],
    summary="List a recipient unit's accounts (admin, its organisation's facilitators)",
)
async def list_recipient_accounts(
    recipient_id: str, principal: Staff, members: Members, limit: Limit = 50, cursor: Cursor = None
) -> schemas.Page[MemberOut]:
    found, next_cursor = await members.contacts(recipient_id, principal, page(limit, cursor))
    return schemas.Page(items=[member_out(a) for a in found], next_cursor=next_cursor)


@router.delete(
    "/recipients/{recipient_id}/accounts/{account_id}",
    response_model=MemberOut,
    summary="Revoke a recipient unit's account: it is disabled (admin, its organisation's facilitators)",
)
async def revoke_recipient_account(
    recipient_id: str, account_id: str, principal: Staff, members: Members
) -> MemberOut:
    return member_out(await members.revoke_contact(recipient_id, account_id, principal, "account revoked"))
