"""The one place where the domain's refusals become HTTP errors (status, code, message, field, details)."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI, Request
from ksbb_kit.errors import ApiError
from starlette.responses import Response

from ksbb_pledges.domain.errors import (
    AvailableUntilPast,
    AvailableUntilTooFar,
    ContactAccessEnded,
    ContactUnknown,
    DonorNotFound,
    IdempotencyKeyReused,
    IllegalTransition,
    LedgerBusy,
    NeedNotFound,
    NeedNotOpen,
    NotPermitted,
    OfferNotFound,
    OfferNotOpen,
    OverPledged,
    PlannedDatePast,
    PlannedDateTooFar,
    PledgeNotFound,
    PledgeNotLive,
    PledgesError,
    ReceivedExceedsPledged,
    RecipientUnavailable,
    TooManyLivePledges,
    UnknownNeed,
)

NOT_FOUND = (UnknownNeed, NeedNotFound, PledgeNotFound, OfferNotFound, DonorNotFound, ContactUnknown)
CONFLICT = (
    OverPledged,
    NeedNotOpen,
    RecipientUnavailable,
    IllegalTransition,
    PledgeNotLive,
    ContactAccessEnded,
    OfferNotOpen,
    TooManyLivePledges,
)
UNPROCESSABLE = (
    IdempotencyKeyReused,
    PlannedDatePast,
    PlannedDateTooFar,
    AvailableUntilPast,
    AvailableUntilTooFar,
    ReceivedExceedsPledged,
)


def api_error(error: PledgesError) -> ApiError:
    """The HTTP error for a domain refusal: its rule is the body's `code`, its message the `message`."""
    field, details = _field_and_details(error)
    # A busy ledger is a moment's contention, not a refusal: the client retries the same request shortly.
    headers = {"Retry-After": "1"} if isinstance(error, LedgerBusy) else None
    return ApiError(_status(error), error.rule, error.message, field=field, details=details, headers=headers)


def _status(error: PledgesError) -> int:
    if isinstance(error, NotPermitted):
        return 403
    if isinstance(error, NOT_FOUND):
        return 404
    if isinstance(error, CONFLICT):
        return 409
    if isinstance(error, UNPROCESSABLE):
        return 422
    if isinstance(error, LedgerBusy):
        return 503
    return 400


def _field_and_details(error: PledgesError) -> tuple[str | None, dict[str, Any] | None]:
    """The request field a refusal points at, and the facts a client needs to react (e.g. what remains)."""
    match error:
        case OverPledged(available=available):
            return "quantity", {"available": available}
        case NeedNotOpen(need_status=status):
            return None, {"available": 0, "need_status": status}
        case RecipientUnavailable():
            return None, {"available": 0}
        case TooManyLivePledges(limit=limit):
            return None, {"live_pledges_limit": limit}
        case IllegalTransition(status=status) | OfferNotOpen(status=status):
            return None, {"status": status}
        case UnknownNeed():
            return "need_id", None
        case ReceivedExceedsPledged():
            return "received_quantity", None
        case IdempotencyKeyReused():
            return "Idempotency-Key", None
        case PlannedDatePast():
            return "planned_date", None
        case PlannedDateTooFar(horizon_days=days):
            return "planned_date", {"horizon_days": days}
        case AvailableUntilPast():
            return "available_until", None
        case AvailableUntilTooFar(horizon_days=days):
            return "available_until", {"horizon_days": days}
        case ContactAccessEnded(ended_at=ended_at):
            return None, {"access_ended_at": ended_at.isoformat()}
    return None, None


def install(app: FastAPI) -> None:
    """Answer every domain refusal raised by a route with the project's error body (via the kit's renderer)."""
    render = app.exception_handlers[ApiError]

    async def domain_refusal(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PledgesError)
        response = render(request, api_error(exc))
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(PledgesError, domain_refusal)
