"""Errors of the pledges domain: each names the rule that refused, with the facts behind it (no HTTP here).

`rule` is the stable, machine-readable name of the rule (the API puts it in the error body's `code`;
an offer's dropped proposal records it as its reason); `message` explains it in one English sentence.
The API's error module maps each class to a status, a field and details in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


class PledgesError(Exception):
    """Base of every refusal the pledges domain and its use cases decide."""

    rule: ClassVar[str]

    @property
    def message(self) -> str:
        """One sentence saying why."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.message


# -- reservations -------------------------------------------------------------------------------------


@dataclass(eq=False)
class OverPledged(PledgesError):
    """The pledge asks for more than the need still lacks."""

    rule: ClassVar[str] = "over_pledged"
    available: int

    @property
    def message(self) -> str:
        return f"only {self.available} still needed"


@dataclass(eq=False)
class LedgerBusy(PledgesError):
    """Other writers changed the need's ledger every time this decision was about to be written."""

    rule: ClassVar[str] = "ledger_busy"
    need_id: str
    attempts: int

    @property
    def message(self) -> str:
        return f"the need's ledger changed under each of {self.attempts} attempts; nothing was written, try again"


@dataclass(eq=False)
class NeedNotOpen(PledgesError):
    """The need is closed, fulfilled or cancelled: it takes no pledges."""

    rule: ClassVar[str] = "need_not_open"
    need_status: str

    @property
    def message(self) -> str:
        return f"the need is {self.need_status}; it takes no pledges"


@dataclass(eq=False)
class RecipientUnavailable(PledgesError):
    """The recipient is suspended or archived: its needs take no pledges."""

    rule: ClassVar[str] = "recipient_unavailable"

    @property
    def message(self) -> str:
        return "the recipient is suspended or archived"


@dataclass(eq=False)
class TooManyLivePledges(PledgesError):
    """A need holds at most so many live pledges at once (it bounds the size and cost of its ledger)."""

    rule: ClassVar[str] = "too_many_live_pledges"
    limit: int

    @property
    def message(self) -> str:
        return f"the need already has {self.limit} pledges on their way; try again once some are delivered"


@dataclass(eq=False)
class IdempotencyKeyReused(PledgesError):
    """A retry key names an earlier, different request."""

    rule: ClassVar[str] = "idempotency_key_reused"
    used_for: str  # e.g. "a different pledge", "another need"

    @property
    def message(self) -> str:
        return f"this Idempotency-Key was used for {self.used_for}"


@dataclass(eq=False)
class PlannedDatePast(PledgesError):
    """A pledge cannot plan its delivery for a day already gone."""

    rule: ClassVar[str] = "planned_date_past"

    @property
    def message(self) -> str:
        return "the planned delivery date is in the past"


@dataclass(eq=False)
class PlannedDateTooFar(PledgesError):
    """A delivery is planned within the programme's horizon."""

    rule: ClassVar[str] = "planned_date_too_far"
    horizon_days: int

    @property
    def message(self) -> str:
        return f"the planned delivery date lies more than {self.horizon_days} days ahead"


# -- lifecycle ----------------------------------------------------------------------------------------


@dataclass(eq=False)
class IllegalTransition(PledgesError):
    """The pledge's state does not allow this action (see the transition table)."""

    rule: ClassVar[str] = "illegal_transition"
    action: str
    status: str
    allowed_from: tuple[str, ...]

    @property
    def message(self) -> str:
        return f"cannot {self.action} a pledge that is {self.status} (allowed from: {', '.join(self.allowed_from)})"


@dataclass(eq=False)
class ReceivedExceedsPledged(PledgesError):
    """A receipt cannot record more than was pledged."""

    rule: ClassVar[str] = "received_exceeds_pledged"
    received: int
    pledged: int

    @property
    def message(self) -> str:
        return f"received {self.received} but only {self.pledged} were pledged"


@dataclass(eq=False)
class PledgeNotLive(PledgesError):
    """The pledge ended without delivery (cancelled, rejected, expired)."""

    rule: ClassVar[str] = "pledge_not_live"
    status: str

    @property
    def message(self) -> str:
        return f"the pledge is {self.status}"


# -- offers -------------------------------------------------------------------------------------------


@dataclass(eq=False)
class OfferNotOpen(PledgesError):
    """The offer was already accepted or declined."""

    rule: ClassVar[str] = "offer_not_open"
    status: str

    @property
    def message(self) -> str:
        return f"the offer is {self.status}"


@dataclass(eq=False)
class AvailableUntilPast(PledgesError):
    """An offer cannot end before today."""

    rule: ClassVar[str] = "available_until_past"

    @property
    def message(self) -> str:
        return "available-until is in the past"


@dataclass(eq=False)
class AvailableUntilTooFar(PledgesError):
    """An offer ends within the programme's horizon."""

    rule: ClassVar[str] = "available_until_too_far"
    horizon_days: int

    @property
    def message(self) -> str:
        return f"available-until lies more than {self.horizon_days} days ahead"


# -- access -------------------------------------------------------------------------------------------


@dataclass(eq=False)
class NotPermitted(PledgesError):
    """The caller has no relation to the resource that allows this."""

    rule: ClassVar[str] = "forbidden"
    reason: str

    @property
    def message(self) -> str:
        return self.reason


@dataclass(eq=False)
class ContactAccessEnded(PledgesError):
    """The donor's access to the recipient's contact ended a set time after the delivery (data minimisation)."""

    rule: ClassVar[str] = "contact_access_ended"
    ended_at: datetime

    @property
    def message(self) -> str:
        return f"access to the contact ended at {self.ended_at.isoformat()}, some days after the delivery"


# -- missing things -----------------------------------------------------------------------------------


@dataclass(eq=False)
class NeedNotFound(PledgesError):
    """The ledger knows no such need (yet: the registry's event may still be on its way)."""

    rule: ClassVar[str] = "need_not_found"
    need_id: str

    @property
    def message(self) -> str:
        return f"need {self.need_id} is not in the ledger"


@dataclass(eq=False)
class UnknownNeed(NeedNotFound):
    """A change (a pledge) names a need the ledger does not know: the request's need id is wrong."""


@dataclass(eq=False)
class PledgeNotFound(PledgesError):
    """No pledge has this id."""

    rule: ClassVar[str] = "pledge_not_found"
    pledge_id: str

    @property
    def message(self) -> str:
        return f"pledge {self.pledge_id} does not exist"


@dataclass(eq=False)
class OfferNotFound(PledgesError):
    """No offer has this id."""

    rule: ClassVar[str] = "offer_not_found"
    offer_id: str

    @property
    def message(self) -> str:
        return f"offer {self.offer_id} does not exist"


@dataclass(eq=False)
class DonorNotFound(PledgesError):
    """The donor has no profile yet."""

    rule: ClassVar[str] = "donor_not_found"

    @property
    def message(self) -> str:
        return "no profile yet; PUT /v1/donors/me creates it"


@dataclass(eq=False)
class ContactUnknown(PledgesError):
    """The registry has not shared the recipient's contact person (or it was erased)."""

    rule: ClassVar[str] = "contact_unknown"
    recipient_id: str

    @property
    def message(self) -> str:
        return "the recipient's contact person is not known yet"
