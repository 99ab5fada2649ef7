"""Routes of facilitator organisations (/v1/organisations)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from ksbb_contracts.vocab import OrganisationStatus

from ksbb_registry.api import schemas
from ksbb_registry.api.deps import (
    AdminOnly,
    Cursor,
    Idempotency,
    IdempotencyKey,
    IfMatch,
    Limit,
    Organisations,
    Staff,
    page,
    precondition,
)
from ksbb_registry.api.responses import idempotent_create, with_etag
from ksbb_registry.domain.organisations import NewOrganisation, Organisation, OrganisationPatch

router = APIRouter(tags=["organisations"])


def organisation_out(organisation: Organisation) -> schemas.OrganisationOut:
    """Response model of an organisation."""
    return schemas.OrganisationOut.model_validate(organisation.model_dump())


def _with_etag(organisation: Organisation) -> JSONResponse:
    return with_etag(organisation_out(organisation), organisation.organisation_id, organisation.version)


@router.post(
    "/organisations",
    status_code=201,
    response_model=schemas.OrganisationOut,
    summary="Register a facilitator organisation (admin)",
)
async def create_organisation(
    body: schemas.OrganisationCreate,
    principal: AdminOnly,
    organisations: Organisations,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    command = NewOrganisation.model_validate(body.model_dump())

    async def create(resource_id: str) -> tuple[schemas.OrganisationOut, str, int]:
        organisation, _ = await organisations.register(resource_id, command)
        return organisation_out(organisation), organisation.organisation_id, organisation.version

    return await idempotent_create(
        idempotency, principal.subject, "create_organisation", idempotency_key, body, "org", create
    )


@router.get(
    "/organisations",
    response_model=schemas.Page[schemas.OrganisationOut],
    summary="List organisations (admin: all; facilitator: own)",
)
async def list_organisations(
    principal: Staff,
    organisations: Organisations,
    status: OrganisationStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> schemas.Page[schemas.OrganisationOut]:
    found, next_cursor = await organisations.find(principal, status=status, page=page(limit, cursor))
    return schemas.Page(items=[organisation_out(o) for o in found], next_cursor=next_cursor)


@router.get(
    "/organisations/{organisation_id}",
    response_model=schemas.OrganisationOut,
    summary="Read an organisation (admin, own facilitator)",
)
async def get_organisation(
    organisation_id: str, principal: Staff, organisations: Organisations
) -> JSONResponse:
    return _with_etag(await organisations.read(organisation_id, principal))


@router.patch(
    "/organisations/{organisation_id}",
    response_model=schemas.OrganisationOut,
    summary="Change an organisation (admin; If-Match)",
)
async def update_organisation(
    organisation_id: str,
    body: schemas.OrganisationUpdate,
    principal: AdminOnly,
    organisations: Organisations,
    if_match: IfMatch = None,
) -> JSONResponse:
    patch = OrganisationPatch.model_validate(body.model_dump(exclude_unset=True))
    return _with_etag(await organisations.change(organisation_id, patch, precondition(if_match)))


@router.post(
    "/organisations/{organisation_id}/suspend",
    response_model=schemas.OrganisationOut,
    summary="Suspend an organisation (admin)",
)
async def suspend_organisation(
    organisation_id: str,
    body: schemas.OrganisationStatusChange,
    principal: AdminOnly,
    organisations: Organisations,
) -> JSONResponse:
    return _with_etag(
        await organisations.set_status(organisation_id, OrganisationStatus.SUSPENDED, body.reason, principal)
    )


@router.post(
    "/organisations/{organisation_id}/reinstate",
    response_model=schemas.OrganisationOut,
    summary="Reinstate an organisation (admin)",
)
async def reinstate_organisation(
    organisation_id: str,
    body: schemas.OrganisationStatusChange,
    principal: AdminOnly,
    organisations: Organisations,
) -> JSONResponse:
    return _with_etag(
        await organisations.set_status(organisation_id, OrganisationStatus.ACTIVE, body.reason, principal)
    )
