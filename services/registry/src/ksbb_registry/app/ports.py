"""What the use cases need from the outside world, as Protocols (adapters implement them).

A new outside dependency (e.g. an identity provider that invites staff and recipient contacts) becomes one
more Protocol here, an adapter implementing it, and one more constructor argument wired in `bootstrap`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from ksbb_contracts import Event

# The identity provider's accounts (invite, disable): the kit's Protocol is the port, re-exported here.
from ksbb_kit.identity import AccountDirectory as AccountDirectory
from pydantic import BaseModel

from ksbb_registry.domain.change import Change
from ksbb_registry.domain.members import AccountState, MemberAccount
from ksbb_registry.domain.needs import Need
from ksbb_registry.domain.organisations import Organisation
from ksbb_registry.domain.recipients import Recipient
from ksbb_registry.domain.reports import Report

A = TypeVar("A", bound=BaseModel)

#: Decides a change from the aggregate as read and the version the write will give it; None = no change.
Decide = Callable[[A, int], Change[A] | None]
#: A follow-up step after a recipient was archived, given the unit and who archived it (account disabling).
ArchiveFollowUp = Callable[[Recipient, str], Awaitable[int]]
#: The caller's expectation about the version it read (the API builds it from If-Match); raises if unmet.
Precondition = Callable[[str, int], None]


class Clock(Protocol):
    """The current time (injectable, so time-based rules are tested by moving a clock)."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True)
class ListQuery:
    """Which aggregates a list shows: fields equal to values (the id field included), optionally limited
    to or excluding given ids."""

    equals: Mapping[str, object] = field(default_factory=dict)
    ids_in: list[str] | None = None
    ids_not_in: list[str] | None = None


@dataclass(frozen=True)
class Page:
    """Where a list page starts and how long it is (`cursor` is the previous page's `next_cursor`)."""

    limit: int
    cursor: str | None = None


class AggregateStore(Protocol[A]):
    """A collection of one aggregate type, changed by guarded single-document writes carrying their events."""

    async def get(self, aggregate_id: str) -> A | None:
        """The aggregate, or None."""
        ...

    async def insert(self, change: Change[A]) -> tuple[A, bool]:
        """Store a new aggregate with its first events; an existing id (a retried create) returns the stored
        one and False."""
        ...

    async def update(self, aggregate_id: str, decide: Decide[A]) -> tuple[A, bool] | None:
        """Read, decide, write guarded by the version read (re-deciding after a concurrent change).

        Returns the aggregate after and whether it was written, or None if it does not exist.
        """
        ...

    async def restate(self, aggregate_id: str, announce: Callable[[A], Event]) -> bool:
        """Publish `announce(aggregate)` without changing it, guarded by the version read (so in order with
        its changes, never overtaking a newer one); False if the aggregate does not exist."""
        ...

    async def find(self, query: ListQuery, page: Page) -> tuple[list[A], str | None]:
        """One page sorted by id, and the cursor of the next page (None at the end)."""
        ...


class OrganisationStore(AggregateStore[Organisation], Protocol):
    """Facilitator organisations."""

    async def get_recent(self, organisation_id: str) -> Organisation | None:
        """The organisation for a check that accepts one read a moment ago: an active one may come from a read
        at most the store's cache age old (a change through this store is seen at once); otherwise read now."""
        ...


class RecipientStore(AggregateStore[Recipient], Protocol):
    """Recipient units."""

    def announced(
        self, recipient_id: str
    ) -> AbstractAsyncContextManager[Callable[[Change[Recipient]], Awaitable[tuple[Recipient, bool]]]]:
        """Announce a recipient about to be inserted (its outbox marker, left on entering, alongside other
        work); yields the insert of that recipient, one round trip. Leaving without inserting is fine."""
        ...

    def awaiting_need_closure(self) -> AsyncIterator[Recipient]:
        """Recipients whose suspension or archive has not finished closing their needs."""
        ...

    async def need_closure_done(self, recipient_id: str, *, version: int | None = None) -> None:
        """Clear the pending-closure mark (only while the recipient still has `version`, if given)."""
        ...


class NeedStore(AggregateStore[Need], Protocol):
    """Needs of recipient units."""

    def announced(
        self, need_id: str
    ) -> AbstractAsyncContextManager[Callable[[Change[Need]], Awaitable[tuple[Need, bool]]]]:
        """Announce a need about to be inserted (as `RecipientStore.announced`); yields its insert."""
        ...

    async def open_need_ids(self, recipient_id: str) -> list[str]:
        """Ids of a recipient's open needs."""
        ...

    async def recipients_with_open_needs(self, organisation_id: str | None) -> list[str]:
        """Ids of recipients (of one organisation, if given) that have an open need."""
        ...

    def series_due(self, now: datetime) -> AsyncIterator[Need]:
        """Needs whose series' next period has started by `now`."""
        ...

    async def end_series_link(self, need_id: str) -> None:
        """The need no longer leads its series (a later period's need does)."""
        ...


class ReportStore(Protocol):
    """Concern reports (internal: no events)."""

    async def get(self, report_id: str) -> Report | None:
        """The report, or None."""
        ...

    async def insert(self, report: Report) -> Report:
        """Store a new report; an existing id (a retried submission) returns the stored one."""
        ...

    async def resolve_if_open(self, resolved: Report) -> Report | None:
        """Write a resolution if the report is still open; None if it was resolved already."""
        ...

    async def find(self, query: ListQuery, page: Page) -> tuple[list[Report], str | None]:
        """One page sorted by id, and the next page's cursor."""
        ...


class RateCounter(Protocol):
    """Counters of a rate limit, one per key and window."""

    async def hit(self, key: str, window_end: datetime) -> int:
        """Count one more hit on `key` (atomically); returns the count including it."""
        ...

    async def forget_ended(self, now: datetime) -> int:
        """Drop the counters of windows that ended before `now`; returns how many."""
        ...


@dataclass(frozen=True)
class ClaimResult:
    """Outcome of claiming one duplicate key: held by the claimant (`new` if this call took it) or by
    `holder` (None when the key kept changing hands), whose name is given when the claim read it."""

    key: str
    held: bool
    new: bool = False
    holder: str | None = None
    holder_name: str | None = field(default=None, compare=False)


class DuplicateClaims(Protocol):
    """Race-free ownership of duplicate keys: at most one live recipient holds each key."""

    async def claim(self, key: str, recipient_id: str) -> ClaimResult:
        """Claim `key` for `recipient_id`, taking over a stale claim; otherwise report its live holder."""
        ...

    async def claim_many(self, keys: Sequence[str], recipient_id: str) -> list[ClaimResult]:
        """Claim every key for `recipient_id` (as `claim` does, one write when they are all free), in order."""
        ...

    async def confirm(self, keys: list[str], recipient_id: str) -> list[str]:
        """Mark claims as backed by a written recipient; returns keys no longer held."""
        ...

    def confirm_soon(self, keys: list[str], recipient_id: str) -> None:
        """Confirm claims of a written recipient after the answer, gathered with others into one write (a claim
        lost meanwhile is logged; a confirmation lost to a crash is made by the sweep)."""
        ...

    async def release(self, keys: list[str], recipient_id: str) -> None:
        """Drop these claims if `recipient_id` still holds them."""
        ...

    async def release_all(self, recipient_id: str) -> int:
        """Free every claim of an archived recipient."""
        ...

    async def sweep(self) -> int:
        """Repair claims left behind by a crash between claiming and writing the recipient."""
        ...


class MemberStore(Protocol):
    """Invited accounts (staff of organisations, contact persons of recipient units); internal, no events."""

    async def get(self, account_id: str) -> MemberAccount | None:
        """The account record, or None."""
        ...

    async def put(self, account: MemberAccount) -> None:
        """Write the record of an invitation (replacing an earlier one of the same account)."""
        ...

    async def replace_if(self, account: MemberAccount, expected: AccountState) -> bool:
        """Write `account` only while the stored record is still in state `expected`; whether it was written."""
        ...

    async def revoke_of_recipient(self, recipient_id: str, *, by: str, reason: str, at: datetime) -> int:
        """Mark every enabled account of a recipient unit for disabling; how many were marked."""
        ...

    def awaiting_disable(self) -> AsyncIterator[MemberAccount]:
        """Accounts marked for disabling that the identity provider has not disabled yet."""
        ...

    async def find(self, query: ListQuery, page: Page) -> tuple[list[MemberAccount], str | None]:
        """One page sorted by account id, and the next page's cursor."""
        ...


class RestatePages(Protocol):
    """One collection's ids in `_id` order, page by page, and where the anti-entropy pass stopped."""

    async def ids_after(self, after: str | None, limit: int) -> list[str]:
        """Up to `limit` ids greater than `after` (from the first when None), in order."""
        ...

    async def cursor(self) -> str | None:
        """The last id the previous page restated (None: start from the first)."""
        ...

    async def save_cursor(self, after: str | None) -> None:
        """Remember where the next page starts."""
        ...
