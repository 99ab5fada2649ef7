"""HTTP routes of the pledges service: donors, pledges and their lifecycle, need ledgers, offers."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from ksbb_kit.auth import CurrentPrincipal, Principal, Role, require_roles
from ksbb_kit.errors import ERROR_RESPONSES, ApiError
from ksbb_kit.http import etag_for, fingerprint
from ksbb_kit.ids import derived_id, new_id

from ksbb_pledges.adapters.donors import DonorStore, donor_id_for
from ksbb_pledges.adapters.ledgers import LedgerStore, new_pledge
from ksbb_pledges.adapters.offers import OfferStore
from ksbb_pledges.api.models import (
    AcceptIn,
    CancelIn,
    DeliverIn,
    DonorProfileIn,
    DonorProfileOut,
    LedgerOut,
    OfferIn,
    OfferOut,
    OfferPage,
    PledgeIn,
    PledgeOut,
    PledgePage,
    ReasonIn,
    RecipientContactOut,
)
from ksbb_pledges.domain.lifecycle import Actor, may

DonorPrincipal = Annotated[Principal, Depends(require_roles(Role.DONOR))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=200,
        description="Retry-safe creates: the same key returns the first result.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=200)]


def actors_of(principal: Principal, ledger: dict[str, Any], pledge: dict[str, Any]) -> set[Actor]:
    """Every relation the caller has to a pledge (empty: a stranger)."""
    actors: set[Actor] = set()
    if principal.is_admin:
        actors.add(Actor.ADMIN)
    if principal.role is Role.DONOR and donor_id_for(principal.subject) == pledge["donor_id"]:
        actors.add(Actor.DONOR)
    if principal.is_recipient(ledger["recipient_id"]):
        actors.add(Actor.RECIPIENT)
    if principal.is_facilitator_of(ledger["organisation_id"]):
        actors.add(Actor.FACILITATOR)
    return actors


def may_see_recipient(principal: Principal, recipient_id: str, organisation_id: str | None) -> bool:
    """Admins, the recipient's own account and its organisation's facilitators see its pledges."""
    return principal.is_admin or principal.is_recipient(recipient_id) or principal.is_facilitator_of(organisation_id)


def build_api(ledgers: LedgerStore, donors: DonorStore, offers: OfferStore) -> APIRouter:
    """The pledges service's /v1 routes."""
    api = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
    clock = ledgers.runtime.clock

    # -- donors -----------------------------------------------------------------------------------

    @api.put("/donors/me", tags=["donors"], summary="Create or update my donor profile")
    async def put_profile(body: DonorProfileIn, principal: DonorPrincipal) -> DonorProfileOut:
        donor_id = donor_id_for(principal.subject)
        stored = await donors.put(donor_id, {**body.model_dump(mode="json"), "subject": principal.subject})
        return DonorProfileOut.model_validate({**stored, "donor_id": donor_id})

    @api.get("/donors/me", tags=["donors"], summary="My donor profile")
    async def get_profile(principal: DonorPrincipal) -> DonorProfileOut:
        donor_id = donor_id_for(principal.subject)
        stored = await donors.get(donor_id)
        if stored is None:
            raise ApiError(404, "donor_not_found", "no profile yet; PUT /v1/donors/me creates it")
        return DonorProfileOut.model_validate({**stored, "donor_id": donor_id})

    # -- pledges ----------------------------------------------------------------------------------

    @api.post("/pledges", tags=["pledges"], status_code=201, summary="Pledge goods to a need (reserved atomically)")
    async def create_pledge(
        body: PledgeIn,
        principal: DonorPrincipal,
        response: Response,
        idempotency_key: IdempotencyKey = None,
    ) -> PledgeOut:
        donor_id = donor_id_for(principal.subject)
        pledge_id = derived_id("plg", principal.subject, idempotency_key) if idempotency_key else new_id("plg")
        request_hash = fingerprint(body.model_dump(mode="json"))
        if idempotency_key:
            elsewhere = await ledgers.ledger_of_pledge(pledge_id)
            if elsewhere is not None and elsewhere["_id"] != body.need_id:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for another need",
                    field="Idempotency-Key",
                )
        if body.planned_date < clock.now().date():
            raise ApiError(422, "planned_date_past", "the planned delivery date is in the past", field="planned_date")
        pledge = new_pledge(
            pledge_id=pledge_id,
            donor_id=donor_id,
            quantity=body.quantity,
            mode=body.mode.value,
            planned_date=body.planned_date,
            now=clock.now(),
            request_hash=request_hash,
            note=body.note,
        )
        ledger, stored, replayed = await ledgers.reserve(body.need_id, pledge)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = f"/v1/pledges/{pledge_id}"
        response.headers["ETag"] = etag_for(pledge_id, stored["version"])
        return PledgeOut.of(ledger, stored)

    @api.get("/pledges", tags=["pledges"], summary="My pledges (donor); every pledge (admin)")
    async def list_pledges(
        principal: CurrentPrincipal,
        cursor: str | None = None,
        limit: Limit = 50,
    ) -> PledgePage:
        if principal.role is Role.DONOR:
            query: dict[str, Any] = {"donor_id": donor_id_for(principal.subject)}
        elif principal.is_admin:
            query = {}
        else:
            raise ApiError(403, "forbidden", "facilitators and recipients list pledges per need or recipient")
        return await page_of(query, cursor, limit)

    async def page_of(query: dict[str, Any], cursor: str | None, limit: int) -> PledgePage:
        if cursor:
            query = {**query, "_id": {"$gt": cursor}}
        found = [c async for c in ledgers.copies.find(query).sort("_id", 1).limit(limit + 1)]
        next_cursor = found[limit - 1]["_id"] if len(found) > limit else None
        return PledgePage(items=[PledgeOut.of_copy(c) for c in found[:limit]], next_cursor=next_cursor)

    async def visible_pledge(pledge_id: str, principal: Principal) -> tuple[dict[str, Any], dict[str, Any]]:
        ledger = await ledgers.ledger_of_pledge(pledge_id)
        if ledger is None:
            raise ApiError(404, "pledge_not_found", f"pledge {pledge_id} does not exist")
        pledge = next(p for p in ledger["pledges"] if p["pledge_id"] == pledge_id)
        if not actors_of(principal, ledger, pledge):
            raise ApiError(403, "forbidden", "this pledge is not yours to see")
        return ledger, pledge

    @api.get("/pledges/{pledge_id}", tags=["pledges"], summary="One pledge")
    async def get_pledge(pledge_id: str, principal: CurrentPrincipal, response: Response) -> PledgeOut:
        ledger, pledge = await visible_pledge(pledge_id, principal)
        response.headers["ETag"] = etag_for(pledge_id, pledge["version"])
        return PledgeOut.of(ledger, pledge)

    @api.get(
        "/pledges/{pledge_id}/recipient-contact",
        tags=["pledges"],
        summary="The recipient's contact person (only for the donor who pledged)",
    )
    async def recipient_contact(pledge_id: str, principal: CurrentPrincipal) -> RecipientContactOut:
        ledger, pledge = await visible_pledge(pledge_id, principal)
        if Actor.DONOR not in actors_of(principal, ledger, pledge):
            raise ApiError(403, "forbidden", "only the donor who made this pledge may read the contact")
        if pledge["status"] not in ("pledged", "confirmed", "dispatched", "delivered"):
            raise ApiError(409, "pledge_not_live", f"the pledge is {pledge['status']}")
        replica = await ledgers.recipients.find_one({"_id": ledger["recipient_id"]}, projection={"contact": 1})
        contact = (replica or {}).get("contact")
        if not contact:
            raise ApiError(404, "contact_unknown", "the recipient's contact person is not known yet")
        return RecipientContactOut.model_validate({**contact, "recipient_id": ledger["recipient_id"]})

    def authorise(principal: Principal, action: str) -> Any:
        def check(ledger: dict[str, Any], pledge: dict[str, Any]) -> str:
            actors = actors_of(principal, ledger, pledge)
            if not actors:
                raise ApiError(403, "forbidden", "this pledge is not yours")
            if not may(action, actors, pledge["mode"]):
                raise ApiError(403, "forbidden", f"you may not {action} this pledge")
            return f"{principal.role.value}:{principal.org_id or principal.recipient_id or 'self'}"

        return check

    @api.post("/pledges/{pledge_id}/confirm", tags=["pledges"], summary="Confirm (recipient or facilitator)")
    async def confirm(pledge_id: str, principal: CurrentPrincipal) -> PledgeOut:
        ledger, pledge = await ledgers.transition(pledge_id, "confirm", authorise(principal, "confirm"))
        return PledgeOut.of(ledger, pledge)

    @api.post(
        "/pledges/{pledge_id}/dispatch",
        tags=["pledges"],
        summary="Dispatched (donor; facilitator for a distribution partner)",
    )
    async def dispatch(pledge_id: str, principal: CurrentPrincipal) -> PledgeOut:
        ledger, pledge = await ledgers.transition(pledge_id, "dispatch", authorise(principal, "dispatch"))
        return PledgeOut.of(ledger, pledge)

    @api.post(
        "/pledges/{pledge_id}/deliver",
        tags=["pledges"],
        summary="Confirm receipt with the quantity received (recipient or facilitator)",
    )
    async def deliver(pledge_id: str, body: DeliverIn, principal: CurrentPrincipal) -> PledgeOut:
        ledger, pledge = await ledgers.transition(
            pledge_id, "deliver", authorise(principal, "deliver"), body.model_dump()
        )
        return PledgeOut.of(ledger, pledge)

    @api.post("/pledges/{pledge_id}/cancel", tags=["pledges"], summary="Cancel before dispatch (donor)")
    async def cancel(pledge_id: str, principal: CurrentPrincipal, body: CancelIn | None = None) -> PledgeOut:
        facts = {"reason": (body.reason if body and body.reason else "donor_cancelled")}
        ledger, pledge = await ledgers.transition(pledge_id, "cancel", authorise(principal, "cancel"), facts)
        return PledgeOut.of(ledger, pledge)

    @api.post(
        "/pledges/{pledge_id}/reject",
        tags=["pledges"],
        summary="Reject with a reason (recipient or facilitator)",
    )
    async def reject(pledge_id: str, body: ReasonIn, principal: CurrentPrincipal) -> PledgeOut:
        ledger, pledge = await ledgers.transition(
            pledge_id, "reject", authorise(principal, "reject"), body.model_dump()
        )
        return PledgeOut.of(ledger, pledge)

    # -- needs and recipients ---------------------------------------------------------------------

    @api.get("/needs/{need_id}/ledger", tags=["ledger"], summary="A need's quantities (public)")
    async def get_ledger(need_id: str, response: Response) -> LedgerOut:
        ledger = await ledgers.get(need_id)
        if ledger is None:
            raise ApiError(404, "need_not_found", f"need {need_id} is not in the ledger")
        response.headers["ETag"] = etag_for(need_id, ledger["ledger_version"])
        return LedgerOut.of(ledger)

    @api.get("/needs/{need_id}/pledges", tags=["ledger"], summary="Pledges for a need (facilitator, recipient)")
    async def need_pledges(need_id: str, principal: CurrentPrincipal) -> list[PledgeOut]:
        ledger = await ledgers.get(need_id)
        if ledger is None:
            raise ApiError(404, "need_not_found", f"need {need_id} is not in the ledger")
        if not may_see_recipient(principal, ledger["recipient_id"], ledger["organisation_id"]):
            raise ApiError(403, "forbidden", "only the recipient, its facilitators and admins see these pledges")
        return [PledgeOut.of(ledger, p) for p in ledger["pledges"]]

    @api.get(
        "/recipients/{recipient_id}/pledges",
        tags=["ledger"],
        summary="Pledges for a recipient (facilitator, recipient)",
    )
    async def recipient_pledges(
        recipient_id: str,
        principal: CurrentPrincipal,
        cursor: str | None = None,
        limit: Limit = 50,
    ) -> PledgePage:
        replica = await ledgers.recipients.find_one({"_id": recipient_id}, projection={"organisation_id": 1})
        organisation_id = (replica or {}).get("organisation_id")
        if organisation_id is None:
            some = await ledgers.ledgers.find_one({"recipient_id": recipient_id}, projection={"organisation_id": 1})
            organisation_id = (some or {}).get("organisation_id")
        if not may_see_recipient(principal, recipient_id, organisation_id):
            raise ApiError(403, "forbidden", "only the recipient, its facilitators and admins see these pledges")
        return await page_of({"recipient_id": recipient_id}, cursor, limit)

    # -- offers -----------------------------------------------------------------------------------

    @api.post("/offers", tags=["offers"], status_code=201, summary="Offer goods; the engine proposes needs")
    async def create_offer(
        body: OfferIn,
        principal: DonorPrincipal,
        response: Response,
        idempotency_key: IdempotencyKey = None,
    ) -> OfferOut:
        if body.available_until < clock.now().date():
            raise ApiError(422, "available_until_past", "available-until is in the past", field="available_until")
        offer_id = derived_id("ofr", principal.subject, idempotency_key) if idempotency_key else new_id("ofr")
        offer, replayed = await offers.create(
            offer_id,
            donor_id_for(principal.subject),
            body.model_dump(mode="json"),
            fingerprint(body.model_dump(mode="json")),
        )
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = f"/v1/offers/{offer_id}"
        return OfferOut.of(offer)

    @api.get("/offers", tags=["offers"], summary="My offers (donor); every offer (admin)")
    async def list_offers(principal: CurrentPrincipal, cursor: str | None = None, limit: Limit = 50) -> OfferPage:
        if principal.role is Role.DONOR:
            query: dict[str, Any] = {"donor_id": donor_id_for(principal.subject)}
        elif principal.is_admin:
            query = {}
        else:
            raise ApiError(403, "forbidden", "only donors and admins list offers")
        if cursor:
            query["_id"] = {"$gt": cursor}
        found = [o async for o in offers.offers.find(query, projection={"_outbox": 0}).sort("_id", 1).limit(limit + 1)]
        next_cursor = found[limit - 1]["_id"] if len(found) > limit else None
        return OfferPage(items=[OfferOut.of(o) for o in found[:limit]], next_cursor=next_cursor)

    async def own_offer(offer_id: str, principal: Principal, *, admin_may: bool) -> dict[str, Any]:
        offer = await offers.get(offer_id)
        if offer is None:
            raise ApiError(404, "offer_not_found", f"offer {offer_id} does not exist")
        mine = principal.role is Role.DONOR and donor_id_for(principal.subject) == offer["donor_id"]
        if not mine and not (admin_may and principal.is_admin):
            raise ApiError(403, "forbidden", "this offer is not yours")
        return offer

    @api.get("/offers/{offer_id}", tags=["offers"], summary="One offer with its proposals")
    async def get_offer(offer_id: str, principal: CurrentPrincipal) -> OfferOut:
        return OfferOut.of(await own_offer(offer_id, principal, admin_may=True))

    @api.post("/offers/{offer_id}/accept", tags=["offers"], summary="Accept the proposals: they become pledges")
    async def accept_offer(offer_id: str, principal: CurrentPrincipal, body: AcceptIn | None = None) -> OfferOut:
        offer = await own_offer(offer_id, principal, admin_may=False)
        body = body or AcceptIn()
        # Default: three days from now, but never after the goods stop being available.
        planned = body.planned_date or min(
            date.fromisoformat(offer["available_until"]), clock.now().date() + timedelta(days=3)
        )
        accepted = await offers.accept(offer, principal.subject, planned, body.mode.value)
        return OfferOut.of(accepted)

    @api.post("/offers/{offer_id}/decline", tags=["offers"], summary="Decline the proposals")
    async def decline_offer(offer_id: str, principal: CurrentPrincipal) -> OfferOut:
        offer = await own_offer(offer_id, principal, admin_may=False)
        return OfferOut.of(await offers.decline(offer))

    return api
