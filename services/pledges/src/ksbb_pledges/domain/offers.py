"""Offers (pure): terms a donor offers, the proposals the engine makes, acceptance and decline.

An offer is `proposed` (or `unmatched` when nothing fits), `accepting` while its proposals are being
reserved, then `accepted` or `declined`. Acceptance turns proposals into pledges reserved on their needs'
ledgers; a need filled in the meantime is re-matched or dropped with the rule that refused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ksbb_contracts import Event
from ksbb_contracts.events.pledges import MatchAccepted, MatchDeclined, MatchProposed, OfferCreated, ProposedAllocation
from ksbb_contracts.limits import HORIZON_DAYS, latest_allowed

from ksbb_pledges.domain.errors import AvailableUntilPast, AvailableUntilTooFar
from ksbb_pledges.domain.matching import Allocation

Offer = dict[str, Any]
#: States from which an offer may be accepted (`accepting`: a crashed or retried acceptance resumes).
ACCEPTABLE = ("proposed", "accepting")
#: The only state from which an offer may be declined.
DECLINABLE = "proposed"
#: Without a planned date, accepted proposals are planned this many days ahead (within availability).
DEFAULT_PLANNING_DAYS = 3


@dataclass(frozen=True)
class OfferTerms:
    """What a donor offers: an item, how much, where (kota/kecamatan codes; none = anywhere), until when."""

    item: str
    quantity: int
    area_codes: list[str]
    available_until: date

    def as_json(self) -> dict[str, Any]:
        """The terms as stored and fingerprinted (the JSON form of the request)."""
        return {
            "item": self.item,
            "quantity": self.quantity,
            "area_codes": list(self.area_codes),
            "available_until": self.available_until.isoformat(),
        }


def check_available_until(available_until: date, today: date) -> None:
    """An offer ends from today up to the programme's horizon (never before today)."""
    if available_until < today:
        raise AvailableUntilPast()
    if available_until > latest_allowed(today):
        raise AvailableUntilTooFar(HORIZON_DAYS)


def new_offer(
    offer_id: str,
    donor_id: str,
    terms: OfferTerms,
    allocations: Sequence[Allocation],
    *,
    request_hash: str,
    now: datetime,
) -> tuple[Offer, list[Event]]:
    """An offer with the engine's proposals, and the events announcing both."""
    proposals = [{"need_id": a.need_id, "recipient_id": a.recipient_id, "quantity": a.quantity} for a in allocations]
    document = {
        "_id": offer_id,
        "donor_id": donor_id,
        **terms.as_json(),
        "status": "proposed" if proposals else "unmatched",
        "proposals": proposals,
        "pledge_ids": [],
        "dropped": [],
        "request_hash": request_hash,
        "created_at": now,
        "updated_at": now,
    }
    events: list[Event] = [
        OfferCreated(
            offer_id=offer_id,
            donor_id=donor_id,
            item=terms.item,
            quantity=terms.quantity,
            area_codes=terms.area_codes,
            available_until=terms.available_until,
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
    return document, events


def default_planned_date(available_until: date, today: date) -> date:
    """A few days from now, but never after the goods stop being available."""
    return min(available_until, today + timedelta(days=DEFAULT_PLANNING_DAYS))


def accepted(
    offer: Offer, pledge_ids: list[str], dropped: list[dict[str, str]], unallocated: int, now: datetime
) -> tuple[dict[str, Any], Event]:
    """The fields an acceptance sets and its event."""
    fields = {
        "status": "accepted",
        "pledge_ids": pledge_ids,
        "dropped": dropped,
        "unallocated": max(unallocated, 0),
        "updated_at": now,
    }
    event = MatchAccepted(
        offer_id=offer["_id"],
        donor_id=offer["donor_id"],
        pledge_ids=pledge_ids,
        dropped_need_ids=[d["need_id"] for d in dropped],
        occurred_at=now,
    )
    return fields, event


def declined(offer: Offer, now: datetime) -> tuple[dict[str, Any], Event]:
    """The fields a decline sets and its event."""
    return {"status": "declined", "updated_at": now}, MatchDeclined(
        offer_id=offer["_id"], donor_id=offer["donor_id"], occurred_at=now
    )
