"""Routes of needs: suggestions, posting for a recipient, reading, listing, changing, cancelling."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from ksbb_contracts.vocab import Item, NeedStatus, Priority
from ksbb_kit.auth import CurrentPrincipal

from ksbb_registry.api import schemas
from ksbb_registry.api.deps import (
    Cursor,
    Idempotency,
    IdempotencyKey,
    IfMatch,
    Limit,
    Needs,
    Recipients,
    page,
    precondition,
)
from ksbb_registry.api.responses import idempotent_create, with_etag
from ksbb_registry.app.needs import NeedFilters
from ksbb_registry.domain.needs import Need, NeedPatch, NewNeed

router = APIRouter(tags=["needs"])


def need_out(need: Need) -> schemas.NeedOut:
    """Response model of a need."""
    return schemas.NeedOut.model_validate(need.model_dump())


def _with_etag(need: Need) -> JSONResponse:
    return with_etag(need_out(need), need.need_id, need.version)


@router.get(
    "/recipients/{recipient_id}/need-suggestions",
    response_model=list[schemas.SuggestionOut],
    summary="Needs suggested from beneficiary counts (admin, own facilitator, own account)",
)
async def need_suggestions(
    recipient_id: str, principal: CurrentPrincipal, recipients: Recipients
) -> list[schemas.SuggestionOut]:
    return [
        schemas.SuggestionOut(**s.__dict__) for s in await recipients.suggestions(recipient_id, principal)
    ]


@router.post(
    "/recipients/{recipient_id}/needs",
    status_code=201,
    response_model=schemas.NeedOut,
    summary="Post a need for an active recipient (admin, own facilitator, own account)",
)
async def create_need(
    recipient_id: str,
    body: schemas.NeedCreate,
    principal: CurrentPrincipal,
    needs: Needs,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    command = NewNeed.model_validate(body.model_dump())

    async def create(resource_id: str) -> tuple[schemas.NeedOut, str, int]:
        need, _ = await needs.post(resource_id, recipient_id, command, principal)
        return need_out(need), need.need_id, need.version

    return await idempotent_create(
        idempotency, principal.subject, f"create_need:{recipient_id}", idempotency_key, body, "need", create
    )


@router.get(
    "/needs",
    response_model=schemas.Page[schemas.NeedOut],
    summary="List needs (admin: all; facilitator: own organisation; recipient: own)",
)
async def list_needs(
    principal: CurrentPrincipal,
    needs: Needs,
    recipient_id: str | None = None,
    organisation_id: str | None = None,
    status: NeedStatus | None = None,
    item: Item | None = None,
    priority: Priority | None = None,
    kota: str | None = None,
    kecamatan: str | None = None,
    kelurahan: str | None = None,
    series_id: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> schemas.Page[schemas.NeedOut]:
    filters = NeedFilters(
        recipient_id=recipient_id,
        organisation_id=organisation_id,
        status=status,
        item=item,
        priority=priority,
        kota_code=kota,
        kecamatan_code=kecamatan,
        kelurahan_code=kelurahan,
        series_id=series_id,
    )
    found, next_cursor = await needs.find(principal, filters, page(limit, cursor))
    return schemas.Page(items=[need_out(n) for n in found], next_cursor=next_cursor)


@router.get(
    "/needs/{need_id}",
    response_model=schemas.NeedOut,
    summary="Read a need (admin, own facilitator, own account)",
)
async def get_need(need_id: str, principal: CurrentPrincipal, needs: Needs) -> JSONResponse:
    return _with_etag(await needs.read(need_id, principal))


@router.patch(
    "/needs/{need_id}",
    response_model=schemas.NeedOut,
    summary="Change an open need (admin, own facilitator, own account; If-Match)",
)
async def update_need(
    need_id: str,
    body: schemas.NeedUpdate,
    principal: CurrentPrincipal,
    needs: Needs,
    if_match: IfMatch = None,
) -> JSONResponse:
    patch = NeedPatch.model_validate(body.model_dump(exclude_unset=True))
    return _with_etag(await needs.change(need_id, patch, principal, precondition(if_match)))


@router.post(
    "/needs/{need_id}/cancel",
    response_model=schemas.NeedOut,
    summary="Cancel an open need (admin, own facilitator, own account)",
)
async def cancel_need(
    need_id: str,
    body: schemas.CancelRequest,
    principal: CurrentPrincipal,
    needs: Needs,
    if_match: IfMatch = None,
) -> JSONResponse:
    return _with_etag(await needs.cancel(need_id, body.reason, principal, precondition(if_match)))
