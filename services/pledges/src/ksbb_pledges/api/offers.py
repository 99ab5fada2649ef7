"""Routes of offers: goods a donor offers, the engine's proposals, acceptance and decline."""

from __future__ import annotations

from fastapi import APIRouter, Response
from ksbb_kit.auth import CurrentPrincipal
from ksbb_kit.errors import ERROR_RESPONSES

from ksbb_pledges.api.deps import (
    After,
    DonorPrincipal,
    Idempotency,
    IdempotencyKey,
    Limit,
    Offers,
    next_cursor,
    run_once,
)
from ksbb_pledges.api.models import AcceptIn, OfferIn, OfferOut, OfferPage
from ksbb_pledges.domain.offers import OfferTerms

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.post("/offers", tags=["offers"], status_code=201, summary="Offer goods; the engine proposes needs")
async def create_offer(
    body: OfferIn,
    principal: DonorPrincipal,
    response: Response,
    offers: Offers,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> OfferOut:
    terms = OfferTerms(
        item=body.item.value,
        quantity=body.quantity,
        area_codes=list(body.area_codes),
        available_until=body.available_until,
    )
    found_again = False

    async def create() -> OfferOut:
        nonlocal found_again
        offer, found_again = await offers.create(principal, terms, idempotency_key)
        return OfferOut.of(offer)

    created, replayed = await run_once(
        idempotency, principal, "create_offer", idempotency_key, terms.as_json(), create, status=201
    )
    if replayed or found_again:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/offers/{created['offer_id']}"
    return OfferOut.model_validate(created)


@router.get("/offers", tags=["offers"], summary="My offers (donor); every offer (admin)")
async def list_offers(principal: CurrentPrincipal, offers: Offers, after: After, limit: Limit = 50) -> OfferPage:
    page = await offers.mine(principal, after, limit)
    return OfferPage(items=[OfferOut.of(o) for o in page.items], next_cursor=next_cursor(page.next_cursor))


@router.get("/offers/{offer_id}", tags=["offers"], summary="One offer with its proposals")
async def get_offer(offer_id: str, principal: CurrentPrincipal, offers: Offers) -> OfferOut:
    return OfferOut.of(await offers.get(offer_id, principal))


@router.post("/offers/{offer_id}/accept", tags=["offers"], summary="Accept the proposals: they become pledges")
async def accept_offer(
    offer_id: str, principal: CurrentPrincipal, offers: Offers, body: AcceptIn | None = None
) -> OfferOut:
    body = body or AcceptIn()
    return OfferOut.of(await offers.accept(offer_id, principal, body.planned_date, body.mode.value))


@router.post("/offers/{offer_id}/decline", tags=["offers"], summary="Decline the proposals")
async def decline_offer(offer_id: str, principal: CurrentPrincipal, offers: Offers) -> OfferOut:
    return OfferOut.of(await offers.decline(offer_id, principal))
