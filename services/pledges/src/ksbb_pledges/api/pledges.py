"""Routes of pledges: create, read, list, the recipient's contact, and the lifecycle transitions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from ksbb_kit.auth import CurrentPrincipal, Principal
from ksbb_kit.errors import ERROR_RESPONSES
from ksbb_kit.http import etag_for

from ksbb_pledges.api.deps import (
    After,
    DonorPrincipal,
    Idempotency,
    IdempotencyKey,
    Limit,
    Pledges,
    next_cursor,
    run_once,
)
from ksbb_pledges.api.models import (
    CancelIn,
    DeliverIn,
    PledgeIn,
    PledgeOut,
    PledgePage,
    ReasonIn,
    RecipientContactOut,
)
from ksbb_pledges.app.pledges import PledgeRequest, Receipt
from ksbb_pledges.domain.pledge import Ledger, Pledge

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

#: How every transition answers a repeated request (documented on each transition route).
TRANSITION_RETRIES = (
    "Retry-safe: with the same Idempotency-Key the first answer is replayed (422 for another body), and "
    "repeating a move you already made answers the pledge's current state (200) instead of 409."
)
#: When the donor's access to the recipient's contact ends (the route's description).
CONTACT_ACCESS = (
    "CONFIDENTIAL. Only the donor who made the pledge reads it, while the pledge is pledged, confirmed or "
    "dispatched, and after its delivery for a limited time only: access ends a configurable number of days "
    "after the delivery (14 by default; `access_ends_at` says when) and at once when the pledge is cancelled, "
    "rejected or expires (409 `pledge_not_live`; after the delivery window 409 `contact_access_ended`). "
    "Data minimisation under UU 27/2022."
)


@router.post("/pledges", tags=["pledges"], status_code=201, summary="Pledge goods to a need (reserved atomically)")
async def create_pledge(
    body: PledgeIn,
    principal: DonorPrincipal,
    response: Response,
    pledges: Pledges,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> PledgeOut:
    request = PledgeRequest(
        need_id=body.need_id,
        quantity=body.quantity,
        planned_date=body.planned_date,
        mode=body.mode.value,
        note=body.note,
    )
    found_again = False

    async def reserve() -> PledgeOut:
        nonlocal found_again
        ledger, stored, found_again = await pledges.create(principal, request, idempotency_key)
        return PledgeOut.of(ledger, stored)

    created, replayed = await run_once(
        idempotency, principal, "create_pledge", idempotency_key, body.model_dump(mode="json"), reserve, status=201
    )
    if replayed or found_again:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/pledges/{created['pledge_id']}"
    response.headers["ETag"] = etag_for(created["pledge_id"], created["version"])
    return PledgeOut.model_validate(created)


@router.get("/pledges", tags=["pledges"], summary="My pledges (donor); every pledge (admin)")
async def list_pledges(principal: CurrentPrincipal, pledges: Pledges, after: After, limit: Limit = 50) -> PledgePage:
    page = await pledges.mine(principal, after, limit)
    return PledgePage(items=[PledgeOut.of_copy(c) for c in page.items], next_cursor=next_cursor(page.next_cursor))


@router.get("/pledges/{pledge_id}", tags=["pledges"], summary="One pledge")
async def get_pledge(pledge_id: str, principal: CurrentPrincipal, response: Response, pledges: Pledges) -> PledgeOut:
    ledger, pledge = await pledges.visible(pledge_id, principal)
    response.headers["ETag"] = etag_for(pledge_id, pledge["version"])
    return PledgeOut.of(ledger, pledge)


@router.get(
    "/pledges/{pledge_id}/recipient-contact",
    tags=["pledges"],
    summary="The recipient's contact person (only for the donor who pledged; ends some days after delivery)",
    description=CONTACT_ACCESS,
)
async def recipient_contact(pledge_id: str, principal: CurrentPrincipal, pledges: Pledges) -> RecipientContactOut:
    return RecipientContactOut.model_validate(await pledges.recipient_contact(pledge_id, principal))


async def _transition(
    idempotency: Idempotency,
    principal: Principal,
    response: Response,
    action: str,
    pledge_id: str,
    key: str | None,
    body: Any,
    move: Callable[[], Awaitable[tuple[Ledger, Pledge]]],
) -> PledgeOut:
    """Run a transition once per Idempotency-Key and answer the pledge (the first answer when replayed)."""

    async def run() -> PledgeOut:
        return PledgeOut.of(*await move())

    moved, replayed = await run_once(idempotency, principal, f"{action}:{pledge_id}", key, body, run)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["ETag"] = etag_for(pledge_id, moved["version"])
    return PledgeOut.model_validate(moved)


@router.post(
    "/pledges/{pledge_id}/confirm",
    tags=["pledges"],
    summary="Confirm (recipient or facilitator)",
    description=TRANSITION_RETRIES,
)
async def confirm(
    pledge_id: str,
    principal: CurrentPrincipal,
    response: Response,
    pledges: Pledges,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> PledgeOut:
    return await _transition(
        idempotency, principal, response, "confirm", pledge_id, idempotency_key, {},
        lambda: pledges.confirm(pledge_id, principal),
    )


@router.post(
    "/pledges/{pledge_id}/dispatch",
    tags=["pledges"],
    summary="Dispatched (donor; facilitator for a distribution partner)",
    description=TRANSITION_RETRIES,
)
async def dispatch(
    pledge_id: str,
    principal: CurrentPrincipal,
    response: Response,
    pledges: Pledges,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> PledgeOut:
    return await _transition(
        idempotency, principal, response, "dispatch", pledge_id, idempotency_key, {},
        lambda: pledges.dispatch(pledge_id, principal),
    )


@router.post(
    "/pledges/{pledge_id}/deliver",
    tags=["pledges"],
    summary="Confirm receipt with the quantity received (recipient or facilitator)",
    description=TRANSITION_RETRIES,
)
async def deliver(
    pledge_id: str,
    body: DeliverIn,
    principal: CurrentPrincipal,
    response: Response,
    pledges: Pledges,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> PledgeOut:
    receipt = Receipt(received_quantity=body.received_quantity, proof_ref=body.proof_ref)
    return await _transition(
        idempotency, principal, response, "deliver", pledge_id, idempotency_key, body.model_dump(mode="json"),
        lambda: pledges.deliver(pledge_id, principal, receipt),
    )


@router.post(
    "/pledges/{pledge_id}/cancel",
    tags=["pledges"],
    summary="Cancel before dispatch (donor)",
    description=TRANSITION_RETRIES,
)
async def cancel(
    pledge_id: str,
    principal: CurrentPrincipal,
    response: Response,
    pledges: Pledges,
    idempotency: Idempotency,
    body: CancelIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> PledgeOut:
    reason = body.reason if body else None
    return await _transition(
        idempotency, principal, response, "cancel", pledge_id, idempotency_key, {"reason": reason},
        lambda: pledges.cancel(pledge_id, principal, reason),
    )


@router.post(
    "/pledges/{pledge_id}/reject",
    tags=["pledges"],
    summary="Reject with a reason (recipient or facilitator)",
    description=TRANSITION_RETRIES,
)
async def reject(
    pledge_id: str,
    body: ReasonIn,
    principal: CurrentPrincipal,
    response: Response,
    pledges: Pledges,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> PledgeOut:
    return await _transition(
        idempotency, principal, response, "reject", pledge_id, idempotency_key, body.model_dump(mode="json"),
        lambda: pledges.reject(pledge_id, principal, body.reason),
    )
