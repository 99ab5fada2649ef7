"""Every domain refusal keeps its HTTP status and exact error body (the API's one mapping; no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ksbb_pledges.api.errors import api_error
from ksbb_pledges.domain import errors
from ksbb_pledges.domain.errors import PledgesError

pytestmark = pytest.mark.unit

EXPECTED: list[tuple[PledgesError, int, dict[str, Any]]] = [
    (
        errors.OverPledged(6),
        409,
        {"code": "over_pledged", "message": "only 6 still needed", "field": "quantity", "details": {"available": 6}},
    ),
    (
        errors.NeedNotOpen("closed"),
        409,
        {
            "code": "need_not_open",
            "message": "the need is closed; it takes no pledges",
            "details": {"available": 0, "need_status": "closed"},
        },
    ),
    (
        errors.RecipientUnavailable(),
        409,
        {
            "code": "recipient_unavailable",
            "message": "the recipient is suspended or archived",
            "details": {"available": 0},
        },
    ),
    (
        errors.IllegalTransition("dispatch", "pledged", ("confirmed",)),
        409,
        {
            "code": "illegal_transition",
            "message": "cannot dispatch a pledge that is pledged (allowed from: confirmed)",
            "details": {"status": "pledged"},
        },
    ),
    (errors.PledgeNotLive("expired"), 409, {"code": "pledge_not_live", "message": "the pledge is expired"}),
    (
        errors.OfferNotOpen("accepted"),
        409,
        {"code": "offer_not_open", "message": "the offer is accepted", "details": {"status": "accepted"}},
    ),
    (
        errors.ReceivedExceedsPledged(7, 6),
        422,
        {
            "code": "received_exceeds_pledged",
            "message": "received 7 but only 6 were pledged",
            "field": "received_quantity",
        },
    ),
    (
        errors.IdempotencyKeyReused("another need"),
        422,
        {
            "code": "idempotency_key_reused",
            "message": "this Idempotency-Key was used for another need",
            "field": "Idempotency-Key",
        },
    ),
    (
        errors.PlannedDatePast(),
        422,
        {"code": "planned_date_past", "message": "the planned delivery date is in the past", "field": "planned_date"},
    ),
    (
        errors.AvailableUntilPast(),
        422,
        {"code": "available_until_past", "message": "available-until is in the past", "field": "available_until"},
    ),
    (errors.NotPermitted("this offer is not yours"), 403, {"code": "forbidden", "message": "this offer is not yours"}),
    (
        errors.UnknownNeed("ned_x"),
        404,
        {"code": "need_not_found", "message": "need ned_x is not in the ledger", "field": "need_id"},
    ),
    (errors.NeedNotFound("ned_x"), 404, {"code": "need_not_found", "message": "need ned_x is not in the ledger"}),
    (errors.PledgeNotFound("plg_x"), 404, {"code": "pledge_not_found", "message": "pledge plg_x does not exist"}),
    (errors.OfferNotFound("ofr_x"), 404, {"code": "offer_not_found", "message": "offer ofr_x does not exist"}),
    (
        errors.DonorNotFound(),
        404,
        {"code": "donor_not_found", "message": "no profile yet; PUT /v1/donors/me creates it"},
    ),
    (
        errors.ContactUnknown("rcp_x"),
        404,
        {"code": "contact_unknown", "message": "the recipient's contact person is not known yet"},
    ),
    (
        errors.PlannedDateTooFar(366),
        422,
        {
            "code": "planned_date_too_far",
            "message": "the planned delivery date lies more than 366 days ahead",
            "field": "planned_date",
            "details": {"horizon_days": 366},
        },
    ),
    (
        errors.AvailableUntilTooFar(366),
        422,
        {
            "code": "available_until_too_far",
            "message": "available-until lies more than 366 days ahead",
            "field": "available_until",
            "details": {"horizon_days": 366},
        },
    ),
    (
        errors.ContactAccessEnded(datetime(2026, 3, 16, 8, 0, tzinfo=UTC)),
        409,
        {
            "code": "contact_access_ended",
            "message": "access to the contact ended at 2026-03-16T08:00:00+00:00, some days after the delivery",
            "details": {"access_ended_at": "2026-03-16T08:00:00+00:00"},
        },
    ),
    (
        errors.TooManyLivePledges(1000),
        409,
        {
            "code": "too_many_live_pledges",
            "message": "the need already has 1000 pledges on their way; try again once some are delivered",
            "details": {"live_pledges_limit": 1000},
        },
    ),
    (
        errors.LedgerBusy("need_1", 64),
        503,
        {
            "code": "ledger_busy",
            "message": "the need's ledger changed under each of 64 attempts; nothing was written, try again",
        },
    ),
]


@pytest.mark.parametrize(("error", "status", "body"), EXPECTED, ids=lambda v: type(v).__name__)
def test_each_refusal_has_its_status_and_body(error: PledgesError, status: int, body: dict[str, Any]) -> None:
    mapped = api_error(error)
    assert mapped.status == status
    assert mapped.body.model_dump(exclude_none=True) == body
    assert (mapped.headers or {}).get("Retry-After") == ("1" if status == 503 else None), "only a busy need says when"


def test_every_domain_error_is_mapped() -> None:
    def leaves(cls: type[PledgesError]) -> set[type[PledgesError]]:
        return {cls} | {leaf for sub in cls.__subclasses__() for leaf in leaves(sub)}

    assert leaves(PledgesError) - {PledgesError} == {type(error) for error, _, _ in EXPECTED}
