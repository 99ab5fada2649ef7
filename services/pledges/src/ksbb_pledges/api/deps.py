"""Dependencies of the routes: the caller, request headers and parameters, and the use cases to call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query
from ksbb_contracts import limits
from ksbb_kit.auth import Principal, Role, require_roles
from ksbb_kit.errors import ApiError
from ksbb_kit.http import IdempotencyStore, StoredResponse, app_state_part, decode_cursor, encode_cursor, fingerprint
from pydantic import BaseModel

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
    idempotency: IdempotencyStore


def attach(app: FastAPI, use_cases: UseCases) -> None:
    """Give an app's routes their use cases (the composition root calls this once, right after building both)."""
    app.state.use_cases = use_cases


Ledger = Annotated[LedgerService, Depends(app_state_part("use_cases", "ledger"))]
Pledges = Annotated[PledgeService, Depends(app_state_part("use_cases", "pledges"))]
Offers = Annotated[OfferService, Depends(app_state_part("use_cases", "offers"))]
Donors = Annotated[DonorService, Depends(app_state_part("use_cases", "donors"))]
Idempotency = Annotated[IdempotencyStore, Depends(app_state_part("use_cases", "idempotency"))]

DonorPrincipal = Annotated[Principal, Depends(require_roles(Role.DONOR))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=limits.IDEMPOTENCY_KEY[0],
        max_length=limits.IDEMPOTENCY_KEY[1],
        description="Retry-safe requests: the same key returns the first result (422 for another body).",
    ),
]
Limit = Annotated[int, Query(ge=limits.PAGE_SIZE[0], le=limits.PAGE_SIZE[1])]


async def _after(cursor: Annotated[
    str | None, Query(max_length=limits.CURSOR_MAX, description="next_cursor of the previous page")
] = None) -> str | None:
    """The id a page cursor continues after; 422 `invalid_cursor` when it is not one of ours."""
    if not cursor:
        return None
    values = decode_cursor(cursor)
    if len(values) != 1 or not isinstance(values[0], str) or not 0 < len(values[0]) <= limits.ID[1]:
        raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor")
    return values[0]


#: The position a list continues after, from the `cursor` query parameter.
After = Annotated[str | None, Depends(_after)]


async def run_once(
    idempotency: IdempotencyStore,
    principal: Principal,
    operation: str,
    key: str | None,
    request: Any,
    run: Callable[[], Awaitable[BaseModel]],
    *,
    status: int = 200,
) -> tuple[dict[str, Any], bool]:
    """The response body of `run` under an Idempotency-Key, and whether the key had been used already.

    Without a key, `run` simply runs. With one, the key is claimed first (kit `IdempotencyStore`): a
    concurrent request with the same key waits until the first one finished, one with another body
    (`request`) gets 422. A repeated request runs `run` again: every pledges use case is idempotent (ids
    derived from the key, transitions that recognise their own repetition), so it answers the resource's
    current state, as a retry always did here, rather than a stale copy of the first answer.
    """
    if not key:
        return (await run()).model_dump(mode="json"), False
    claimed = await idempotency.claim(principal.subject, operation, key, fingerprint(request))
    if isinstance(claimed, StoredResponse):
        return (await run()).model_dump(mode="json"), True
    try:
        body = (await run()).model_dump(mode="json")
    except BaseException:
        await idempotency.release(claimed)
        raise
    await idempotency.complete(claimed, status, body)
    return body, False


def next_cursor(last_id: str | None) -> str | None:
    """The opaque cursor of the next page (None on the last page)."""
    return encode_cursor([last_id]) if last_id else None
