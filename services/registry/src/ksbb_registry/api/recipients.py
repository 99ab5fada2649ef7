"""Routes of recipient units (/v1/recipients): registration, reading, changes, audit trail, lifecycle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from ksbb_contracts.vocab import RecipientKind, RecipientStatus
from ksbb_kit.auth import CurrentPrincipal

from ksbb_registry.api import schemas
from ksbb_registry.api.deps import (
    Cursor,
    Idempotency,
    IdempotencyKey,
    IfMatch,
    Limit,
    Recipients,
    Staff,
    page,
    precondition,
)
from ksbb_registry.api.responses import idempotent_create, with_etag
from ksbb_registry.app.recipients import RecipientFilters
from ksbb_registry.domain.lifecycle import TRANSITIONS, Action
from ksbb_registry.domain.recipients import NewRecipient, Recipient, RecipientPatch

router = APIRouter(tags=["recipients"])


def recipient_out(recipient: Recipient) -> schemas.RecipientOut:
    """Response model of a recipient (with its contact: only for those who may see it)."""
    return schemas.RecipientOut.model_validate(recipient.model_dump())


def _with_etag(recipient: Recipient) -> JSONResponse:
    return with_etag(recipient_out(recipient), recipient.recipient_id, recipient.version)


@router.post(
    "/recipients",
    status_code=201,
    response_model=schemas.RecipientOut,
    summary="Register a recipient (admin, facilitator of its organisation)",
)
async def create_recipient(
    body: schemas.RecipientCreate,
    principal: Staff,
    recipients: Recipients,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    command = NewRecipient.model_validate(body.model_dump())

    async def create(resource_id: str) -> tuple[schemas.RecipientOut, str, int]:
        recipient, _ = await recipients.register(resource_id, command, principal)
        return recipient_out(recipient), recipient.recipient_id, recipient.version

    return await idempotent_create(
        idempotency, principal.subject, "create_recipient", idempotency_key, body, "rcp", create
    )


@router.get(
    "/recipients",
    response_model=schemas.Page[schemas.RecipientOut],
    summary="List recipients (admin: all; facilitator: own organisation)",
)
async def list_recipients(
    principal: Staff,
    recipients: Recipients,
    kind: RecipientKind | None = None,
    status: RecipientStatus | None = None,
    kota: str | None = None,
    kecamatan: str | None = None,
    kelurahan: str | None = None,
    organisation_id: str | None = None,
    has_open_needs: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> schemas.Page[schemas.RecipientOut]:
    filters = RecipientFilters(
        kind=kind,
        status=status,
        kota_code=kota,
        kecamatan_code=kecamatan,
        kelurahan_code=kelurahan,
        organisation_id=organisation_id,
        has_open_needs=has_open_needs,
    )
    found, next_cursor = await recipients.find(principal, filters, page(limit, cursor))
    return schemas.Page(items=[recipient_out(r) for r in found], next_cursor=next_cursor)


@router.get(
    "/recipients/{recipient_id}",
    response_model=schemas.RecipientOut,
    summary="Read a recipient with its contact (admin, own facilitator, own account)",
)
async def get_recipient(
    recipient_id: str, principal: CurrentPrincipal, recipients: Recipients
) -> JSONResponse:
    return _with_etag(await recipients.read(recipient_id, principal))


@router.patch(
    "/recipients/{recipient_id}",
    response_model=schemas.RecipientOut,
    summary="Change a recipient (admin, own facilitator; own account: contact only; If-Match)",
)
async def update_recipient(
    recipient_id: str,
    body: schemas.RecipientUpdate,
    principal: CurrentPrincipal,
    recipients: Recipients,
    if_match: IfMatch = None,
) -> JSONResponse:
    patch = RecipientPatch.model_validate(body.model_dump(exclude_unset=True))
    return _with_etag(await recipients.change(recipient_id, patch, principal, precondition(if_match)))


@router.get(
    "/recipients/{recipient_id}/audit",
    response_model=list[schemas.AuditEntry],
    summary="Audit trail of a recipient (admin, own facilitator)",
)
async def recipient_audit(
    recipient_id: str, principal: Staff, recipients: Recipients
) -> list[schemas.AuditEntry]:
    return [
        schemas.AuditEntry.model_validate(entry.model_dump())
        for entry in await recipients.audit(recipient_id, principal)
    ]


def _transition_route(action: Action, who: str) -> None:
    """Register the POST route of one lifecycle action."""

    async def run(
        recipient_id: Annotated[str, Path()],
        body: schemas.TransitionRequest,
        principal: CurrentPrincipal,
        recipients: Recipients,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        recipient = await recipients.transition(
            recipient_id,
            action,
            principal,
            reason=body.reason,
            document_refs=body.document_refs,
            precondition=precondition(if_match),
        )
        return _with_etag(recipient)

    run.__name__ = f"{action.value}_recipient"
    # The body model follows the lifecycle table, so the document marks `reason` required exactly where
    # the rule requires it (a model object, not a name: annotations here are strings in this module).
    run.__annotations__["body"] = (
        schemas.ReasonedTransitionRequest if TRANSITIONS[action].reason_required else schemas.TransitionRequest
    )
    router.post(
        f"/recipients/{{recipient_id}}/{action.value}",
        response_model=schemas.RecipientOut,
        summary=f"{action.value.capitalize()} a recipient ({who})",
    )(run)


_transition_route(Action.VERIFY, "admin, own facilitator; note required")
_transition_route(Action.ACTIVATE, "admin, own facilitator")
_transition_route(Action.SUSPEND, "admin, own facilitator; reason required; closes open needs")
_transition_route(Action.REINSTATE, "admin")
_transition_route(Action.ARCHIVE, "admin; reason required; erases the contact person")
