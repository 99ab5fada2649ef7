"""Routes of the caller's own donor profile.

Route functions here and in the other routers carry no docstring on purpose: FastAPI would publish it as
the operation's description in the OpenAPI document; each route's `summary` documents it.
"""

from __future__ import annotations

from fastapi import APIRouter
from ksbb_kit.errors import ERROR_RESPONSES

from ksbb_pledges.api.deps import DonorPrincipal, Donors
from ksbb_pledges.api.models import DonorProfileIn, DonorProfileOut

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.put("/donors/me", tags=["donors"], summary="Create or update my donor profile")
async def put_profile(body: DonorProfileIn, principal: DonorPrincipal, donors: Donors) -> DonorProfileOut:
    donor_id, stored = await donors.put(principal, body.model_dump(mode="json"))
    return DonorProfileOut.model_validate({**stored, "donor_id": donor_id})


@router.get("/donors/me", tags=["donors"], summary="My donor profile")
async def get_profile(principal: DonorPrincipal, donors: Donors) -> DonorProfileOut:
    donor_id, stored = await donors.get(principal)
    return DonorProfileOut.model_validate({**stored, "donor_id": donor_id})
