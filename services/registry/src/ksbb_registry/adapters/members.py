"""MongoDB store of invited accounts (`accounts`; internal: personal data, never in events)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime

from ksbb_kit.identity import (
    Account,
    AccountDirectory,
    IdentityUnavailable,
    Invitation,
    InvitedAccount,
    KeycloakAccounts,
    KeycloakAdmin,
)
from ksbb_kit.settings import KitSettings
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

from ksbb_registry.adapters.store import HIDDEN, Doc, Documents, page_of
from ksbb_registry.app.ports import ListQuery, Page
from ksbb_registry.domain.members import AccountState, MemberAccount

log = logging.getLogger(__name__)
ACCOUNT_DOCUMENTS = Documents(MemberAccount, "account_id")
#: The lists by organisation / unit and the disable job's lookup.
ACCOUNT_INDEXES = [
    IndexModel([("organisation_id", ASCENDING), ("kind", ASCENDING), ("_id", ASCENDING)], name="org_kind_id"),
    IndexModel([("recipient_id", ASCENDING), ("state", ASCENDING)], name="recipient_state"),
    IndexModel([("state", ASCENDING)], name="state"),
]


class AccountCollection:
    """The `accounts` collection, one document per identity-provider account id."""

    def __init__(self, collection: AsyncCollection[Doc]) -> None:
        self.collection = collection
        self.documents = ACCOUNT_DOCUMENTS

    async def setup(self) -> None:
        """Create the indexes (idempotent)."""
        await self.collection.create_indexes(ACCOUNT_INDEXES)

    async def get(self, account_id: str) -> MemberAccount | None:
        """The account record, or None."""
        document = await self.collection.find_one({"_id": account_id}, projection=HIDDEN)
        return None if document is None else self.documents.load(document)

    async def put(self, account: MemberAccount) -> None:
        """Write the record of an invitation (replacing an earlier one of the same account)."""
        document = self.documents.dump(account)
        await self.collection.replace_one({"_id": document["_id"]}, document, upsert=True)

    async def replace_if(self, account: MemberAccount, expected: AccountState) -> bool:
        """Write `account` only while the stored record is still in state `expected`."""
        document = self.documents.dump(account)
        result = await self.collection.replace_one({"_id": document["_id"], "state": expected.value}, document)
        return result.modified_count == 1

    async def revoke_of_recipient(self, recipient_id: str, *, by: str, reason: str, at: datetime) -> int:
        """Mark every enabled account of a recipient unit for disabling."""
        result = await self.collection.update_many(
            {"recipient_id": recipient_id, "state": AccountState.INVITED.value},
            {"$set": {"state": AccountState.DISABLING.value, "disabled_by": by, "disable_reason": reason,
                      "disable_requested_at": at}},
        )
        return result.modified_count

    async def awaiting_disable(self) -> AsyncIterator[MemberAccount]:
        """Accounts marked for disabling."""
        async for document in self.collection.find({"state": AccountState.DISABLING.value}, projection=HIDDEN):
            yield self.documents.load(document)

    async def find(self, query: ListQuery, page: Page) -> tuple[list[MemberAccount], str | None]:
        """One page sorted by account id, and the next page's cursor."""
        docs, next_cursor = await page_of(self.collection, self.documents.query(query), page, HIDDEN)
        return [self.documents.load(document) for document in docs], next_cursor


class NoIdentityProvider:
    """`AccountDirectory` of a registry started without onboarding credentials: every call answers 503."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def invite(self, invitation: Invitation) -> InvitedAccount:
        """Refused: onboarding is not configured."""
        raise IdentityUnavailable(self.reason)

    async def disable(self, account_id: str) -> None:
        """Refused (the account stays marked for the job once configured)."""
        raise IdentityUnavailable(self.reason)

    async def find_by_email(self, email: str) -> Account | None:
        """Refused: onboarding is not configured."""
        raise IdentityUnavailable(self.reason)


def identity_directory(settings: KitSettings) -> AccountDirectory:
    """Keycloak's admin API with the registry's narrow onboarding client, when the settings name it."""
    if settings.oidc_issuer and settings.identity_admin_client_secret is not None:
        return KeycloakAccounts(KeycloakAdmin.from_settings(settings))
    reason = (f"onboarding is not configured: set {settings.env_names('oidc_issuer')} and "
              f"{settings.env_names('identity_admin_client_secret')}")
    log.warning(reason)
    return NoIdentityProvider(reason)
