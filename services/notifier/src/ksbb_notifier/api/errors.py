"""The one place mapping the notifier's rule violations to the project's error body."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ksbb_kit.errors import ApiError

from ksbb_notifier.domain.errors import (
    AddressRefused,
    DeliveryNotFound,
    EndpointChangedMeanwhile,
    EndpointDisabled,
    EndpointNotFound,
    FieldMayNotBeNull,
    ForeignOrganisation,
    NotifierError,
    RotationCollided,
    UrlRefused,
)


def api_error(error: NotifierError) -> ApiError:
    """The HTTP answer to a rule violation."""
    message = str(error)
    match error:
        case EndpointNotFound():
            return ApiError(404, "endpoint_not_found", message, field="endpoint_id")
        case DeliveryNotFound():
            return ApiError(404, "delivery_not_found", message, field="delivery_id")
        case ForeignOrganisation():
            return ApiError(403, "forbidden", message, field="organisation_id")
        case EndpointDisabled():
            return ApiError(409, "endpoint_disabled", message, field="enabled")
        case RotationCollided():
            return ApiError(409, "concurrent_change", message)
        case EndpointChangedMeanwhile():
            return ApiError(412, "precondition_failed", message, field="If-Match")
        case UrlRefused():
            return ApiError(422, "invalid_url", message, field="url")
        case AddressRefused():
            return ApiError(422, "url_not_allowed", message, field="url")
        case FieldMayNotBeNull(field="url"):
            return ApiError(422, "invalid_url", message, field="url")
        case FieldMayNotBeNull(field=field):
            return ApiError(422, "validation_error", message, field=field)
    raise error  # a rule without an HTTP answer is a bug; let it surface as one


def install(app: FastAPI) -> None:
    """Answer every rule violation a route lets through with the project's error body."""

    async def rule_violated(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotifierError)
        error = api_error(exc)
        return JSONResponse(error.body.model_dump(exclude_none=True), status_code=error.status, headers=error.headers)

    app.add_exception_handler(NotifierError, rule_violated)
