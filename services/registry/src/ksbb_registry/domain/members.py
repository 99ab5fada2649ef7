"""Onboarding rules: who may be invited by whom, and what a member or recipient account record holds.

An account record ties a person's identity-provider account to a facilitator organisation (staff) or to a
recipient unit (its contact person). Records hold personal data (e-mail, name) and never leave the registry
in events.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from ksbb_contracts.vocab import OrganisationStatus, RecipientStatus
from pydantic import BaseModel, ConfigDict

from ksbb_registry.domain.errors import OrganisationNotActive, RecipientNotVerified

#: Recipient states in which the unit's contact person may be invited (verified, not suspended or archived).
INVITABLE_RECIPIENT_STATES = frozenset({RecipientStatus.VERIFIED, RecipientStatus.ACTIVE})


class AccountKind(StrEnum):
    """What an account is tied to."""

    STAFF = "staff"  # a facilitator organisation's staff member (role facilitator, org_id)
    RECIPIENT_CONTACT = "recipient_contact"  # a recipient unit's contact person (role recipient, recipient_id)


class AccountState(StrEnum):
    """Where an account stands in the registry."""

    INVITED = "invited"  # the account exists in the identity provider and is enabled
    DISABLING = "disabling"  # revoked or its unit archived: the identity provider still has to disable it
    DISABLED = "disabled"


class MemberAccount(BaseModel):
    """One invited account as the registry records it (keyed by the identity provider's account id)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    account_id: str
    kind: AccountKind
    organisation_id: str
    recipient_id: str | None = None
    email: str
    first_name: str
    last_name: str | None = None
    state: AccountState
    invited_by: str
    invited_at: datetime
    email_sent: bool = False
    disabled_by: str | None = None
    disable_reason: str | None = None
    disable_requested_at: datetime | None = None
    disabled_at: datetime | None = None


def check_staff_invitable(status: OrganisationStatus) -> None:
    """Staff are invited only into an active organisation."""
    if status is not OrganisationStatus.ACTIVE:
        raise OrganisationNotActive()


def check_contact_invitable(status: RecipientStatus) -> None:
    """A recipient unit's contact person is invited only once the unit is verified (and not suspended/archived)."""
    if status not in INVITABLE_RECIPIENT_STATES:
        raise RecipientNotVerified(status.value)


def invited(
    account_id: str, kind: AccountKind, organisation_id: str, recipient_id: str | None, *, email: str,
    first_name: str, last_name: str | None, by: str, at: datetime, email_sent: bool,
) -> MemberAccount:
    """The record of an invitation the identity provider carried out (enabled again if it was revoked)."""
    return MemberAccount(
        account_id=account_id, kind=kind, organisation_id=organisation_id, recipient_id=recipient_id,
        email=email.lower(), first_name=first_name, last_name=last_name, state=AccountState.INVITED,
        invited_by=by, invited_at=at, email_sent=email_sent,
    )


def revoke(account: MemberAccount, *, by: str, reason: str | None, at: datetime) -> MemberAccount | None:
    """Mark an account for disabling; None when it is already disabled or on its way (idempotent)."""
    if account.state is not AccountState.INVITED:
        return None
    return account.model_copy(update={
        "state": AccountState.DISABLING, "disabled_by": by, "disable_reason": reason,
        "disable_requested_at": at,
    })


def disabled(account: MemberAccount, at: datetime) -> MemberAccount:
    """The account after the identity provider disabled it."""
    return account.model_copy(update={"state": AccountState.DISABLED, "disabled_at": at})
