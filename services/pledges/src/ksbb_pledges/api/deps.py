"""Dependencies of the routes: the caller, request headers and parameters, and the use cases to call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Query, Request
from ksbb_kit.auth import Principal, Role, require_roles

from ksbb_pledges.app.donors import DonorService
from ksbb_pledges.app.ledger import LedgerService
from ksbb_pledges.app.offers import OfferService
from ksbb_pledges.app.pledges import PledgeService


@dataclass(frozen=True)
class UseCases:
    """The use cases the routes call, built by the composition root."""

    ledger: LedgerService
    pledges: PledgeService
    offers: OfferService
    donors: DonorService


def attach(app: FastAPI, use_cases: UseCases) -> None:
    """Give an app's routes their use cases (the composition root calls this once, right after building both)."""
    app.state.use_cases = use_cases


def _use_cases(request: Request) -> UseCases:
    use_cases: UseCases = request.app.state.use_cases
    return use_cases


def _ledger(request: Request) -> LedgerService:
    return _use_cases(request).ledger


def _pledges(request: Request) -> PledgeService:
    return _use_cases(request).pledges


def _offers(request: Request) -> OfferService:
    return _use_cases(request).offers


def _donors(request: Request) -> DonorService:
    return _use_cases(request).donors


Ledger = Annotated[LedgerService, Depends(_ledger)]
Pledges = Annotated[PledgeService, Depends(_pledges)]
Offers = Annotated[OfferService, Depends(_offers)]
Donors = Annotated[DonorService, Depends(_donors)]

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
