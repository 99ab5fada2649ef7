"""The one place where the registry's rule errors become HTTP responses (status, code, field, details)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ksbb_kit.errors import ApiError

from ksbb_registry.domain import errors as rules

#: Status and error code of each rule error (NotFound's code names its resource).
STATUS_AND_CODE: dict[type[rules.RuleBroken], tuple[int, str]] = {
    rules.NotPermitted: (403, "forbidden"),
    rules.ConcurrentChange: (409, "concurrent_update"),
    rules.InvalidCursor: (422, "invalid_cursor"),
    rules.UnknownAreaCode: (422, "unknown_area"),
    rules.AreaNotFound: (404, "unknown_area"),
    rules.AreaMismatch: (422, "area_mismatch"),
    rules.OutsideJakarta: (422, "outside_jakarta"),
    rules.UnknownOrganisation: (422, "unknown_organisation"),
    rules.OrganisationNotActive: (409, "organisation_suspended"),
    rules.OrganisationStatusUnchanged: (409, "illegal_transition"),
    rules.IllegalTransition: (409, "illegal_transition"),
    rules.ReasonRequired: (422, "reason_required"),
    rules.DescriptionRequired: (422, "description_required"),
    rules.RwRequired: (422, "rw_required"),
    rules.DuplicateRecipient: (409, "duplicate_recipient"),
    rules.RecipientIsArchived: (409, "recipient_archived"),
    rules.RecipientNotActive: (409, "recipient_not_active"),
    rules.NeededByInPast: (422, "needed_by_in_past"),
    rules.NeededByTooFar: (422, "needed_by_too_far"),
    rules.NeedNotOpen: (409, "need_not_open"),
    rules.BelowCommitted: (409, "below_committed"),
    rules.ReportAlreadyResolved: (409, "report_resolved"),
    rules.ReportRateExceeded: (429, "rate_limited"),
    rules.RecipientNotVerified: (409, "recipient_not_verified"),
    rules.AccountTaken: (409, "account_conflict"),
    rules.InvitationRefused: (422, "invitation_refused"),
    rules.IdentityProviderDown: (503, "identity_provider_unavailable"),
}


def _details(error: rules.RuleBroken) -> dict[str, Any] | None:
    """Machine-readable facts a client needs to react to the error."""
    if isinstance(error, rules.IllegalTransition):
        return {"from": error.current, "action": error.action}
    if isinstance(error, rules.DuplicateRecipient):
        return {"existing_recipient_id": error.existing_recipient_id}
    if isinstance(error, rules.BelowCommitted):
        return {"committed": error.committed}
    if isinstance(error, rules.NeededByTooFar):
        return {"horizon_days": error.horizon_days}
    return None


def api_error(error: rules.RuleBroken) -> ApiError:
    """The API error a broken rule is answered with."""
    if isinstance(error, rules.NotFound):
        status, code = 404, f"{error.resource}_not_found"
    else:
        status, code = STATUS_AND_CODE[type(error)]
    retry_after = getattr(error, "retry_after", None)
    waiting = isinstance(error, rules.ReportRateExceeded | rules.IdentityProviderDown)
    headers = {"Retry-After": str(retry_after)} if waiting else None
    return ApiError(status, code, error.message, field=error.field, details=_details(error), headers=headers)


def install(app: FastAPI) -> None:
    """Answer every broken rule with the project's error body."""

    @app.exception_handler(rules.RuleBroken)
    async def _rule_broken(_: Request, exc: rules.RuleBroken) -> JSONResponse:
        error = api_error(exc)
        return JSONResponse(
            error.body.model_dump(exclude_none=True), status_code=error.status, headers=error.headers
        )
