"""Offers in MongoDB: matching against the ledgers, proposals, acceptance into pledges, decline."""

from __future__ import annotations

from datetime import date
from typing import Any

from ksbb_contracts.events.pledges import (
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    OfferCreated,
    ProposedAllocation,
)
from ksbb_contracts.vocab import NeedStatus, Priority
from ksbb_kit.errors import ApiError
from ksbb_kit.ids import derived_id
from ksbb_kit.outbox import new_document, strip_outbox, with_outbox
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from ksbb_pledges.adapters.ledgers import LedgerStore, new_pledge
from ksbb_pledges.domain.matching import Allocation, NeedCandidate, allocate


class OfferStore:
    """Offers and their proposals; acceptance reserves each proposal atomically on its need's ledger."""

    def __init__(self, ledgers: LedgerStore) -> None:
        self.ledgers = ledgers
        self.runtime = ledgers.runtime
        self.offers = self.runtime.db["offers"]

    async def get(self, offer_id: str) -> dict[str, Any] | None:
        """An offer without outbox bookkeeping."""
        return strip_outbox(await self.offers.find_one({"_id": offer_id}))

    async def candidates(self, item: str, exclude: set[str] | None = None) -> list[NeedCandidate]:
        """Open, unblocked needs of an item with something remaining, with their recipients' history."""
        history = await self.ledgers.recipient_history()
        households: dict[str, int] = {}
        async for replica in self.ledgers.recipients.find({}, projection={"households": 1}):
            households[replica["_id"]] = int(replica.get("households") or 1)
        found: list[NeedCandidate] = []
        query = {
            "status": NeedStatus.OPEN.value,
            "item": item,
            "recipient_blocked": {"$ne": True},
            "$expr": {"$lt": ["$committed", "$requested"]},
        }
        async for ledger in self.ledgers.ledgers.find(query, projection={"pledges": 0, "_outbox": 0, "_applied": 0}):
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

    async def create(
        self, offer_id: str, donor_id: str, body: dict[str, Any], request_hash: str
    ) -> tuple[dict[str, Any], bool]:
        """Create an offer and its proposals in one write; a retried create returns the first one."""
        existing = await self.get(offer_id)
        if existing is not None:
            if existing.get("request_hash") != request_hash:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different offer",
                    field="Idempotency-Key",
                )
            return existing, True
        now = self.runtime.clock.now()
        available_until = date.fromisoformat(body["available_until"])
        allocations = allocate(body["quantity"], await self.candidates(body["item"]), body["area_codes"])
        proposals = [
            {"need_id": a.need_id, "recipient_id": a.recipient_id, "quantity": a.quantity} for a in allocations
        ]
        document = {
            "_id": offer_id,
            "donor_id": donor_id,
            **body,
            "status": "proposed" if proposals else "unmatched",
            "proposals": proposals,
            "pledge_ids": [],
            "dropped": [],
            "request_hash": request_hash,
            "created_at": now,
            "updated_at": now,
        }
        events: list[Any] = [
            OfferCreated(
                offer_id=offer_id,
                donor_id=donor_id,
                item=body["item"],
                quantity=body["quantity"],
                area_codes=body["area_codes"],
                available_until=available_until,
                occurred_at=now,
            )
        ]
        if proposals:
            events.append(
                MatchProposed(
                    offer_id=offer_id,
                    donor_id=donor_id,
                    occurred_at=now,
                    allocations=[ProposedAllocation(**p) for p in proposals],
                )
            )
        try:
            await self.offers.insert_one(new_document(document, self.runtime.events(*events)))
        except DuplicateKeyError:
            return await self.create(offer_id, donor_id, body, request_hash)
        self.runtime.relay.wake()
        return strip_outbox(document) or document, False

    async def accept(self, offer: dict[str, Any], subject: str, planned_date: date, mode: str) -> dict[str, Any]:
        """Turn proposals into pledges, each reserved atomically now; a filled need is re-matched or dropped.

        Pledge ids derive from the offer and the need, so a retried or resumed accept reserves nothing twice.
        """
        claimed = await self.offers.find_one_and_update(
            {"_id": offer["_id"], "status": {"$in": ["proposed", "accepting"]}},
            {"$set": {"status": "accepting", "updated_at": self.runtime.clock.now()}},
            return_document=ReturnDocument.AFTER,
        )
        if claimed is None:
            raise ApiError(
                409, "offer_not_open", f"the offer is {offer['status']}", details={"status": offer["status"]}
            )
        already = {}
        async for ledger in self.ledgers.ledgers.find({"pledges.offer_id": offer["_id"]}, projection={"pledges": 1}):
            for pledge in ledger["pledges"]:
                if pledge.get("offer_id") == offer["_id"]:
                    already[ledger["_id"]] = pledge
        left = offer["quantity"] - sum(p["quantity"] for p in already.values())
        pledge_ids = [p["pledge_id"] for p in already.values()]
        dropped: list[dict[str, str]] = []

        async def reserve(allocation: Allocation | dict[str, Any]) -> int:
            need_id = allocation.need_id if isinstance(allocation, Allocation) else allocation["need_id"]
            quantity = allocation.quantity if isinstance(allocation, Allocation) else allocation["quantity"]
            if need_id in already:
                return 0
            pledge = new_pledge(
                pledge_id=derived_id("plg", subject, "offer", offer["_id"], need_id),
                donor_id=offer["donor_id"],
                quantity=min(quantity, left),
                mode=mode,
                planned_date=planned_date,
                now=self.runtime.clock.now(),
                request_hash=offer["_id"],
                offer_id=offer["_id"],
            )
            try:
                _, reserved, _ = await self.ledgers.reserve(need_id, pledge, allow_partial=True)
            except ApiError as exc:
                dropped.append({"need_id": need_id, "reason": exc.body.code})
                return 0
            already[need_id] = reserved
            pledge_ids.append(reserved["pledge_id"])
            return int(reserved["quantity"])

        for proposal in offer["proposals"]:
            if left <= 0:
                break
            left -= await reserve(proposal)
        if left > 0:
            # Needs filled in the meantime: re-match what is left once, over needs not yet used.
            exclude = set(already) | {d["need_id"] for d in dropped}
            for allocation in allocate(left, await self.candidates(offer["item"], exclude), offer["area_codes"]):
                if left <= 0:
                    break
                left -= await reserve(allocation)
        now = self.runtime.clock.now()
        event = MatchAccepted(
            offer_id=offer["_id"],
            donor_id=offer["donor_id"],
            pledge_ids=pledge_ids,
            dropped_need_ids=[d["need_id"] for d in dropped],
            occurred_at=now,
        )
        await self.offers.update_one(
            {"_id": offer["_id"], "status": "accepting"},
            with_outbox(
                {
                    "$set": {
                        "status": "accepted",
                        "pledge_ids": pledge_ids,
                        "dropped": dropped,
                        "unallocated": max(left, 0),
                        "updated_at": now,
                    }
                },
                self.runtime.events(event),
            ),
        )
        self.runtime.relay.wake()
        return await self.get(offer["_id"]) or offer

    async def decline(self, offer: dict[str, Any]) -> dict[str, Any]:
        """Decline an offer's proposals."""
        now = self.runtime.clock.now()
        event = MatchDeclined(offer_id=offer["_id"], donor_id=offer["donor_id"], occurred_at=now)
        result = await self.offers.update_one(
            {"_id": offer["_id"], "status": "proposed"},
            with_outbox({"$set": {"status": "declined", "updated_at": now}}, self.runtime.events(event)),
        )
        if result.matched_count == 0:
            raise ApiError(
                409, "offer_not_open", f"the offer is {offer['status']}", details={"status": offer["status"]}
            )
        self.runtime.relay.wake()
        return await self.get(offer["_id"]) or offer
