"""Offers: matching them against open needs, acceptance into pledges (with re-matching), decline."""

from __future__ import annotations

from datetime import date

from ksbb_contracts.vocab import Priority
from ksbb_kit.auth import Principal
from ksbb_kit.clock import Clock
from ksbb_kit.http import fingerprint
from ksbb_kit.ids import derived_id, new_id

from ksbb_pledges.app.access import check_owns_offer, donor_id_for, listing_scope
from ksbb_pledges.app.ledger import LedgerService
from ksbb_pledges.app.ports import LedgerStore, OfferStore, Page, Replicas
from ksbb_pledges.domain.errors import IdempotencyKeyReused, OfferNotFound, OfferNotOpen, PledgesError
from ksbb_pledges.domain.matching import NeedCandidate, allocate
from ksbb_pledges.domain.offers import (
    ACCEPTABLE,
    DECLINABLE,
    Offer,
    OfferTerms,
    accepted,
    check_available_until,
    declined,
    default_planned_date,
    new_offer,
)
from ksbb_pledges.domain.pledge import check_planned_date, new_pledge


class OfferService:
    """Offers of goods that the engine splits fairly across open needs; acceptance reserves each part."""

    def __init__(
        self, offers: OfferStore, ledger: LedgerService, ledgers: LedgerStore, replicas: Replicas, clock: Clock
    ) -> None:
        self.offers = offers
        self.ledger = ledger
        self.ledgers = ledgers
        self.replicas = replicas
        self.clock = clock

    async def create(self, principal: Principal, terms: OfferTerms, idempotency_key: str | None) -> tuple[Offer, bool]:
        """Create an offer with its proposals in one write; a retried create (same key) returns the first one."""
        check_available_until(terms.available_until, self.clock.now().date())
        offer_id = derived_id("ofr", principal.subject, idempotency_key) if idempotency_key else new_id("ofr")
        request_hash = fingerprint(terms.as_json())
        while True:
            existing = await self.offers.get(offer_id)
            if existing is not None:
                if existing.get("request_hash") != request_hash:
                    raise IdempotencyKeyReused("a different offer")
                return existing, True
            allocations = allocate(terms.quantity, await self.candidates(terms.item), terms.area_codes)
            offer, events = new_offer(
                offer_id,
                donor_id_for(principal.subject),
                terms,
                allocations,
                request_hash=request_hash,
                now=self.clock.now(),
            )
            if await self.offers.insert(offer, events):
                return offer, False
            # A concurrent retry stored it first: answer as a replay of theirs.

    async def mine(self, principal: Principal, cursor: str | None, limit: int) -> Page:
        """A donor's own offers; every offer for an admin."""
        donor_id = listing_scope(principal, "only donors and admins list offers")
        return await self.offers.page(donor_id=donor_id, cursor=cursor, limit=limit)

    async def get(self, offer_id: str, principal: Principal) -> Offer:
        """One offer with its proposals (the offering donor, or an admin)."""
        return await self._own(offer_id, principal, admin_may=True)

    async def accept(self, offer_id: str, principal: Principal, planned_date: date | None, mode: str) -> Offer:
        """Turn proposals into pledges, each reserved atomically now; a filled need is re-matched or dropped.

        Pledge ids derive from the offer and the need, so a retried or resumed accept reserves nothing twice.
        """
        offer = await self._own(offer_id, principal, admin_may=False)
        if planned_date is not None:
            check_planned_date(planned_date, self.clock.now().date())
        planned = planned_date or default_planned_date(
            date.fromisoformat(offer["available_until"]), self.clock.now().date()
        )
        if await self.offers.claim_for_acceptance(offer["_id"], ACCEPTABLE, self.clock.now()) is None:
            raise OfferNotOpen(offer["status"])
        already = await self.ledgers.pledges_of_offer(offer["_id"])
        left = offer["quantity"] - sum(p["quantity"] for p in already.values())
        pledge_ids = [p["pledge_id"] for p in already.values()]
        dropped: list[dict[str, str]] = []

        async def reserve(need_id: str, quantity: int) -> int:
            if need_id in already:
                return 0
            pledge = new_pledge(
                pledge_id=derived_id("plg", principal.subject, "offer", offer["_id"], need_id),
                donor_id=offer["donor_id"],
                quantity=min(quantity, left),
                mode=mode,
                planned_date=planned,
                now=self.clock.now(),
                request_hash=offer["_id"],
                offer_id=offer["_id"],
            )
            try:
                _, reserved, _ = await self.ledger.reserve(need_id, pledge, allow_partial=True)
            except PledgesError as refused:
                dropped.append({"need_id": need_id, "reason": refused.rule})
                return 0
            already[need_id] = reserved
            pledge_ids.append(reserved["pledge_id"])
            return int(reserved["quantity"])

        for proposal in offer["proposals"]:
            if left <= 0:
                break
            left -= await reserve(proposal["need_id"], proposal["quantity"])
        if left > 0:
            # Needs filled in the meantime: re-match what is left once, over needs not yet used.
            exclude = set(already) | {d["need_id"] for d in dropped}
            for allocation in allocate(left, await self.candidates(offer["item"], exclude), offer["area_codes"]):
                if left <= 0:
                    break
                left -= await reserve(allocation.need_id, allocation.quantity)
        fields, event = accepted(offer, pledge_ids, dropped, left, self.clock.now())
        await self.offers.change_if(offer["_id"], "accepting", fields, [event])
        return await self.offers.get(offer["_id"]) or offer

    async def decline(self, offer_id: str, principal: Principal) -> Offer:
        """Decline an offer's proposals."""
        offer = await self._own(offer_id, principal, admin_may=False)
        fields, event = declined(offer, self.clock.now())
        if not await self.offers.change_if(offer["_id"], DECLINABLE, fields, [event]):
            raise OfferNotOpen(offer["status"])
        return await self.offers.get(offer["_id"]) or offer

    async def candidates(self, item: str, exclude: set[str] | None = None) -> list[NeedCandidate]:
        """Open, unblocked needs of an item with something remaining, with their recipients' history."""
        history = await self.ledgers.recipient_history()
        households = await self.replicas.households()
        found: list[NeedCandidate] = []
        for ledger in await self.ledgers.open_needs(item):
            if exclude and ledger["_id"] in exclude:
                continue
            received, last = history.get(ledger["recipient_id"], (0, None))
            found.append(
                NeedCandidate(
                    need_id=ledger["_id"],
                    recipient_id=ledger["recipient_id"],
                    requested=ledger["requested"],
                    remaining=ledger["requested"] - ledger["committed"],
                    priority=Priority(ledger["priority"]),
                    needed_by=date.fromisoformat(ledger["needed_by"]),
                    kelurahan_code=ledger["kelurahan_code"],
                    households=households.get(ledger["recipient_id"], 1),
                    last_received_at=last,
                    received_total=received,
                )
            )
        return found

    async def _own(self, offer_id: str, principal: Principal, *, admin_may: bool) -> Offer:
        offer = await self.offers.get(offer_id)
        if offer is None:
            raise OfferNotFound(offer_id)
        check_owns_offer(principal, offer, admin_may=admin_may)
        return offer
