"""What the use cases need from the outside world: stores of ledgers, pledge copies, replicas, donors, offers.

Implemented by the MongoDB adapters; a fake that keeps the same promises (notably: `LedgerStore.apply`
writes a decision atomically or not at all, re-deciding on a fresh read when another writer won) can
stand in for unit tests of the use cases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from ksbb_contracts import Event

from ksbb_pledges.domain.donors import Donor, DonorUpdate
from ksbb_pledges.domain.ledger import LedgerChange
from ksbb_pledges.domain.offers import Offer
from ksbb_pledges.domain.pledge import Ledger, Pledge

R = TypeVar("R")


@dataclass(frozen=True)
class Page:
    """A page of documents in id order; pass `next_cursor` back for the next one (None: the last page)."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


class LedgerStore(Protocol):
    """Need ledgers (one document per need, live pledges embedded), changed only through `apply`.

    Settled pledges leave the ledger for the per-pledge copies; the reads of one pledge still find them.
    """

    async def create_indexes(self) -> None:
        """Create the indexes the queries need."""
        ...

    async def get(self, need_id: str, *, focus: str | None = None) -> Ledger | None:
        """A ledger with its live pledges; with `focus`, its `pledges` hold only that pledge (if it exists)."""
        ...

    async def ledger_of_pledge(self, pledge_id: str) -> Ledger | None:
        """The ledger of a pledge, with only that pledge (live or settled) in `pledges`."""
        ...

    async def need_of_pledge(self, pledge_id: str) -> str | None:
        """The need a pledge was made for, if its copy says so (one cheap lookup, no scan)."""
        ...

    async def pledges_of_need(self, need_id: str) -> list[Pledge]:
        """Every pledge a need ever had, live and settled, oldest first."""
        ...

    async def apply(
        self,
        need_id: str,
        decide: Callable[[Ledger], LedgerChange[R]],
        *,
        create: Callable[[], Ledger] | None = None,
        focus: str | None = None,
        look_in_copies: bool = True,
        new_pledge: bool = False,
    ) -> R:
        """Write `decide`'s change to the need's ledger atomically, events included; returns its result.

        `decide` sees the ledger as read and may raise to refuse; when another writer changed the
        ledger in between, it is called again on a fresh read. `create` builds the ledger of a need not
        stored yet (without it, UnknownNeed); `focus` reads only that pledge, so the decision must append
        or replace just that one — a pledge that settled is shown too (it no longer changes), looked up in
        the copies unless `look_in_copies` is off (an id that has no copy). `new_pledge` says the focused
        id was just made up: it exists nowhere, so the store may decide on the ledger as it last wrote it
        (the revision guard still catches any other writer; refusals are always decided on a fresh read).
        """
        ...

    def need_ids_of_recipient(self, recipient_id: str) -> AsyncIterator[str]:
        """Every need of a recipient that has a ledger."""
        ...

    def waiting_pledges(self) -> AsyncIterator[tuple[str, list[Pledge]]]:
        """(need id, pledges) of each ledger with a pledge still waiting for confirmation or dispatch."""
        ...

    async def organisation_of_recipient(self, recipient_id: str) -> str | None:
        """The facilitating organisation named by any ledger of the recipient."""
        ...

    async def open_needs(self, item: str) -> list[Ledger]:
        """Open, unblocked needs of an item with something remaining (without their pledges)."""
        ...

    async def pledges_of_offer(self, offer_id: str) -> dict[str, Pledge]:
        """The pledges already made from an offer, by need id."""
        ...

    async def recipient_history(self) -> dict[str, tuple[int, datetime | None]]:
        """Per recipient: units received so far and when the last delivery happened."""
        ...


class PledgeCopies(Protocol):
    """Per-pledge copies of the ledgers' pledges, for listing; derived, repaired by a sweep."""

    async def page(
        self, *, donor_id: str | None = None, recipient_id: str | None = None, cursor: str | None, limit: int
    ) -> Page:
        """A page of copies (of one donor, one recipient, or all)."""
        ...

    async def repair(self, *, since: datetime | None = None) -> int:
        """Rewrite copies left behind their ledger (changed after `since`; None: every ledger)."""
        ...

    async def versions(self, pledge_ids: Sequence[str]) -> dict[str, int]:
        """The copied version of each of these pledges that has a copy."""
        ...


class Replicas(Protocol):
    """The registry's recipients and organisations as this service last heard of them."""

    async def recipient_held(self, recipient_id: str) -> dict[str, Any] | None:
        """The recipient replica's `status`, `version` and `state_digest` (None: never heard of)."""
        ...

    async def organisation_held(self, organisation_id: str) -> dict[str, Any] | None:
        """The organisation replica's `version` and `state_digest` (None: never heard of)."""
        ...

    async def recipient_organisation(self, recipient_id: str) -> str | None:
        """The recipient's facilitating organisation, if known."""
        ...

    async def recipient_contact(self, recipient_id: str) -> dict[str, Any] | None:
        """The recipient's confidential contact person, if known."""
        ...

    async def households(self) -> dict[str, int]:
        """Beneficiary households per known recipient."""
        ...

    async def replace_recipient(self, recipient_id: str, held: dict[str, Any] | None, fields: dict[str, Any]) -> bool:
        """Set a recipient's facts if its replica still holds what was read (`held`); False: it changed meanwhile."""
        ...

    async def replace_organisation(
        self, organisation_id: str, held: dict[str, Any] | None, fields: dict[str, Any]
    ) -> bool:
        """Set an organisation's facts if its replica still holds what was read; False: it changed meanwhile."""
        ...

    async def record_recipient_contact(self, recipient_id: str, contact: dict[str, Any]) -> None:
        """Set a recipient's contact person."""
        ...

    async def record_organisation_contact(self, organisation_id: str, contact: dict[str, Any]) -> None:
        """Set an organisation's contact person."""
        ...

    async def erase_contact(self, key: str) -> None:
        """Forget the contact person of the recipient or organisation with this id."""
        ...


class DonorStore(Protocol):
    """Donor profiles, each changed with its events in the same write."""

    async def get(self, donor_id: str) -> Donor | None:
        """A donor profile."""
        ...

    async def put(self, donor_id: str, decide: Callable[[Donor | None], DonorUpdate]) -> Donor:
        """Write `decide`'s next version atomically (re-deciding when a concurrent write won); the stored profile."""
        ...

    async def restate(self, donor_id: str, decide: Callable[[Donor], DonorUpdate]) -> bool:
        """Write `decide`'s restatement of an existing profile, guarded by the version read (re-deciding when a
        concurrent write won); False when there is no profile."""
        ...


class OfferStore(Protocol):
    """Offers, each changed with its events in the same write."""

    async def get(self, offer_id: str) -> Offer | None:
        """An offer."""
        ...

    async def insert(self, offer: Offer, events: Sequence[Event]) -> bool:
        """Store a new offer; False when one with its id exists already."""
        ...

    async def page(self, *, donor_id: str | None, cursor: str | None, limit: int) -> Page:
        """A page of offers (of one donor, or all)."""
        ...

    async def claim_for_acceptance(self, offer_id: str, acceptable: Sequence[str], now: datetime) -> Offer | None:
        """Mark an offer `accepting` if it is in an acceptable state; None when it is not."""
        ...

    async def change_if(self, offer_id: str, status: str, fields: dict[str, Any], events: Sequence[Event]) -> bool:
        """Set fields of an offer that is in `status`; False when it is not."""
        ...


class RestatePages(Protocol):
    """Ledger ids in `_id` order, page by page, and where the anti-entropy pass stopped (survives restarts)."""

    async def ids_after(self, after: str | None, limit: int) -> list[str]:
        """Up to `limit` ledger ids greater than `after` (from the first when None), in order."""
        ...

    async def cursor(self) -> str | None:
        """The last ledger id the previous page restated (None: start from the first)."""
        ...

    async def save_cursor(self, after: str | None) -> None:
        """Remember where the next page starts."""
        ...
