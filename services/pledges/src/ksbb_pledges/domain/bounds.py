"""How big a need's ledger document can get (pure): the live-pledge limit and the worst-case size it implies.

A ledger holds only its live pledges (pledged, confirmed, dispatched) and, for a moment after each write,
the settled ones on their way to the per-pledge collection (`leaving`). A reservation is refused while
live + leaving pledges reach MAX_LIVE_PLEDGES, so the document never holds more pledges than that, whatever
the need's history. `worst_case_ledger_bytes()` builds the largest document the input bounds allow (every
text at its longest, in four-byte characters) and measures its BSON size, so the figure follows the bounds
in `ksbb_contracts.limits` when they change. It stays far below MongoDB's 16 MiB document limit; the events
waiting in the document's outbox are not counted (the relay removes them as it publishes).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from ksbb_contracts import limits as L
from ksbb_contracts.vocab import DeliveryMode, Item, NeedStatus, PledgeStatus, Priority

#: Live pledges (plus settled ones still leaving) a need's ledger holds at most.
MAX_LIVE_PLEDGES = 1000
#: MongoDB's limit on one document.
DOCUMENT_LIMIT_BYTES = 16 * 1024 * 1024
#: The longest reason a settled pledge records: the donor's or recipient's own words, or the registry's
#: reason for closing or cancelling the need (bounded by the registry's API).
REASON_MAX = max(L.PLEDGE_REASON[1], L.NEED_CANCEL_REASON[1])
#: The longest `by` of an audit entry: a role, a colon and the caller's organisation or recipient id.
ACTOR_MAX = len("facilitator:") + L.ID[1]
#: A request fingerprint (hex SHA-256).
HASH_LENGTH = 64
WIDE = "\U0001f4e6"  # a four-byte UTF-8 character: the most bytes a character of text can take
MOMENT = datetime(2026, 1, 1, tzinfo=UTC)


def bson_size(value: Any) -> int:
    """The encoded BSON size of a document (the types a ledger uses), as MongoDB counts it."""
    return _element_size(value) if isinstance(value, dict) else _value_size(value)


def _element_size(document: dict[str, Any] | list[Any]) -> int:
    items = document.items() if isinstance(document, dict) else ((str(i), v) for i, v in enumerate(document))
    # int32 length + (type byte + key + NUL + value) per element + closing NUL
    return 4 + sum(1 + len(key.encode()) + 1 + _value_size(value) for key, value in items) + 1


def _value_size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, float | datetime):
        return 8
    if isinstance(value, str):
        return 4 + len(value.encode()) + 1
    if isinstance(value, dict | list):
        return _element_size(value)
    raise TypeError(f"no BSON size for {type(value).__name__}")


def _text(length: int) -> str:
    return WIDE * length


def _ascii(length: int) -> str:
    return "x" * length


def _longest(vocabulary: type[StrEnum]) -> str:
    return max((member.value for member in vocabulary), key=len)


def worst_case_pledge() -> dict[str, Any]:
    """The largest pledge a ledger can hold: every text at its longest, the most audit entries it can have.

    Settled pledges are the larger ones (one more audit entry, and a reason or a proof), so the largest
    of a cancelled one with the longest reason and a delivered one with the longest proof bounds live and
    leaving pledges alike.
    """
    longest_id = _ascii(L.ID[1])
    step = {"status": _longest(PledgeStatus), "at": MOMENT, "by": _ascii(ACTOR_MAX)}
    common = {
        "pledge_id": longest_id,
        "donor_id": longest_id,
        "quantity": L.QUANTITY[1],
        "delivered_quantity": L.QUANTITY[1],
        "mode": _longest(DeliveryMode),
        "planned_date": date(2026, 1, 1).isoformat(),
        "status": _longest(PledgeStatus),
        "version": 2**31 - 1,
        "created_at": MOMENT,
        "updated_at": MOMENT,
        "request_hash": _ascii(HASH_LENGTH),
        "offer_id": longest_id,
        "note": _text(L.PLEDGE_NOTE_MAX),
        "reason": None,
        "proof_ref": None,
        "reminded_stage": _longest(PledgeStatus),
        **{f"{status.value}_at": MOMENT for status in PledgeStatus},
    }
    cancelled = {"reason": _text(REASON_MAX)}
    delivered = {"received_quantity": L.QUANTITY[1], "proof_ref": _text(L.PROOF_REF_MAX)}
    # pledged, confirmed and dispatched, then the settling step with its facts
    variants = [
        {**common, **facts, "history": [dict(step), dict(step), dict(step), {**step, **facts}]}
        for facts in (cancelled, delivered)
    ]
    return max(variants, key=bson_size)


def worst_case_ledger() -> dict[str, Any]:
    """The largest ledger document the limit allows (need facts at their longest, the pledge slots full)."""
    longest_id = _ascii(L.ID[1])
    pledge = worst_case_pledge()
    return {
        "_id": longest_id,
        "recipient_id": longest_id,
        "organisation_id": longest_id,
        "kelurahan_code": _ascii(L.AREA_CODE_MAX),
        "item": _longest(Item),
        "unit": _text(L.UNIT_MAX),
        "priority": _longest(Priority),
        "needed_by": date(2026, 1, 1).isoformat(),
        "requested": L.QUANTITY[1],
        "status": _longest(NeedStatus),
        "need_version": 2**62,
        "need_digest": "f" * 16,
        "recipient_version": 2**62,
        "recipient_blocked": True,
        "recipient_digest": "f" * 16,
        "committed": L.QUANTITY[1],
        "in_transit": L.QUANTITY[1],
        "delivered": L.QUANTITY[1],
        "live_pledges": MAX_LIVE_PLEDGES,
        "ledger_version": 2**62,
        "rev": 2**62,
        "created_at": MOMENT,
        "updated_at": MOMENT,
        "last_delivered_at": MOMENT,
        # live + leaving never exceed the limit: all slots in one list bounds any split between the two
        "pledges": [pledge] * MAX_LIVE_PLEDGES,
        "leaving": [],
    }


def worst_case_ledger_bytes() -> int:
    """The BSON size of the largest ledger document the limits allow (outbox excluded)."""
    return bson_size(worst_case_ledger())
