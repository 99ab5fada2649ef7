"""Routes of pledges: create, read, list, the recipient's contact, and the lifecycle transitions."""

from __future__ import annotations

from fastapi import APIRouter, Response
from ksbb_kit.auth import CurrentPrincipal
from ksbb_kit.errors import ERROR_RESPONSES
from ksbb_kit.http import etag_for

from ksbb_pledges.api.deps import DonorPrincipal, IdempotencyKey, Limit, Pledges
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

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.post("/pledges", tags=["pledges"], status_code=201, summary="Pledge goods to a need (reserved atomically)")
async def create_pledge(
    body: PledgeIn,
    principal: DonorPrincipal,
    response: Response,
    pledges: Pledges,
    idempotency_key: IdempotencyKey = None,
) -> PledgeOut:
    request = PledgeRequest(
        need_id=body.need_id,
        quantity=body.quantity,
        planned_date=body.planned_date,
        mode=body.mode.value,
        note=body.note,
    )
    ledger, stored, replayed = await pledges.create(principal, request, idempotency_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/pledges/{stored['pledge_id']}"
    response.headers["ETag"] = etag_for(stored["pledge_id"], stored["version"])
    return PledgeOut.of(ledger, stored)


@router.get("/pledges", tags=["pledges"], summary="My pledges (donor); every pledge (admin)")
async def list_pledges(
    principal: CurrentPrincipal,
    pledges: Pledges,
    cursor: str | None = None,
    limit: Limit = 50,
) -> PledgePage:
    page = await pledges.mine(principal, cursor, limit)
    return PledgePage(items=[PledgeOut.of_copy(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/pledges/{pledge_id}", tags=["pledges"], summary="One pledge")
async def get_pledge(pledge_id: str, principal: CurrentPrincipal, response: Response, pledges: Pledges) -> PledgeOut:
    ledger, pledge = await pledges.visible(pledge_id, principal)
    response.headers["ETag"] = etag_for(pledge_id, pledge["version"])
    return PledgeOut.of(ledger, pledge)


@router.get(
    "/pledges/{pledge_id}/recipient-contact",
    tags=["pledges"],
    summary="The recipient's contact person (only for the donor who pledged)",
)
async def recipient_contact(pledge_id: str, principal: CurrentPrincipal, pledges: Pledges) -> RecipientContactOut:
    return RecipientContactOut.model_validate(await pledges.recipient_contact(pledge_id, principal))


@router.post("/pledges/{pledge_id}/confirm", tags=["pledges"], summary="Confirm (recipient or facilitator)")
async def confirm(pledge_id: str, principal: CurrentPrincipal, pledges: Pledges) -> PledgeOut:
    return PledgeOut.of(*await pledges.confirm(pledge_id, principal))


@router.post(
    "/pledges/{pledge_id}/dispatch",
    tags=["pledges"],
    summary="Dispatched (donor; facilitator for a distribution partner)",
)
async def dispatch(pledge_id: str, principal: CurrentPrincipal, pledges: Pledges) -> PledgeOut:
    return PledgeOut.of(*await pledges.dispatch(pledge_id, principal))


@router.post(
    "/pledges/{pledge_id}/deliver",
    tags=["pledges"],
    summary="Confirm receipt with the quantity received (recipient or facilitator)",
)
async def deliver(pledge_id: str, body: DeliverIn, principal: CurrentPrincipal, pledges: Pledges) -> PledgeOut:
    receipt = Receipt(received_quantity=body.received_quantity, proof_ref=body.proof_ref)
    return PledgeOut.of(*await pledges.deliver(pledge_id, principal, receipt))


@router.post("/pledges/{pledge_id}/cancel", tags=["pledges"], summary="Cancel before dispatch (donor)")
async def cancel(
    pledge_id: str, principal: CurrentPrincipal, pledges: Pledges, body: CancelIn | None = None
) -> PledgeOut:
    return PledgeOut.of(*await pledges.cancel(pledge_id, principal, body.reason if body else None))


@router.post(
    "/pledges/{pledge_id}/reject",
    tags=["pledges"],
    summary="Reject with a reason (recipient or facilitator)",
)
async def reject(pledge_id: str, body: ReasonIn, principal: CurrentPrincipal, pledges: Pledges) -> PledgeOut:
    return PledgeOut.of(*await pledges.reject(pledge_id, principal, body.reason))
