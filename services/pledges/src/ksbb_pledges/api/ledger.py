"""Routes of the ledger views: a need's public quantities, its pledges, and a recipient's pledges."""

from __future__ import annotations

from fastapi import APIRouter, Response
from ksbb_kit.auth import CurrentPrincipal
from ksbb_kit.errors import ERROR_RESPONSES
from ksbb_kit.http import etag_for

from ksbb_pledges.api.deps import After, Ledger, Limit, Pledges, next_cursor
from ksbb_pledges.api.models import LedgerOut, PledgeOut, PledgePage

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.get("/needs/{need_id}/ledger", tags=["ledger"], summary="A need's quantities (public)")
async def get_ledger(need_id: str, response: Response, ledger: Ledger) -> LedgerOut:
    found = await ledger.ledger(need_id)
    response.headers["ETag"] = etag_for(need_id, found["ledger_version"])
    return LedgerOut.of(found)


@router.get("/needs/{need_id}/pledges", tags=["ledger"], summary="Pledges for a need (facilitator, recipient)")
async def need_pledges(need_id: str, principal: CurrentPrincipal, ledger: Ledger) -> list[PledgeOut]:
    found = await ledger.with_pledges(need_id, principal)
    return [PledgeOut.of(found, p) for p in found["pledges"]]


@router.get(
    "/recipients/{recipient_id}/pledges",
    tags=["ledger"],
    summary="Pledges for a recipient (facilitator, recipient)",
)
async def recipient_pledges(
    recipient_id: str,
    principal: CurrentPrincipal,
    pledges: Pledges,
    after: After,
    limit: Limit = 50,
) -> PledgePage:
    page = await pledges.of_recipient(recipient_id, principal, after, limit)
    return PledgePage(items=[PledgeOut.of_copy(c) for c in page.items], next_cursor=next_cursor(page.next_cursor))
