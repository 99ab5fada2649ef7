"""API errors as JSON: a machine-readable code, a message and the offending field path."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ksbb_kit.tracing import current_request_id


class ErrorBody(BaseModel):
    """The JSON body of every error response."""

    code: str
    message: str
    field: str | None = None
    details: dict[str, Any] | None = None


class ApiError(Exception):
    """An error with an HTTP status, returned to the client as `ErrorBody`."""

    def __init__(
        self, status: int, code: str, message: str, *, field: str | None = None,
        details: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(code=code, message=message, field=field, details=details)
        self.headers = headers


def _field_path(location: Any) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in location)


def install_error_handlers(app: FastAPI) -> None:
    """Render ApiError, validation errors and unexpected failures as `ErrorBody` JSON."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body.model_dump(exclude_none=True), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        body = ErrorBody(
            code="validation_error",
            message=str(first.get("msg")),
            field=_field_path(first.get("loc", ())),
            details={"errors": [{"field": _field_path(e.get("loc", ())), "message": e.get("msg")} for e in errors]},
        )
        return JSONResponse(body.model_dump(exclude_none=True), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        # The request id lets an operator find this failure's log lines; nothing internal leaks.
        request_id = current_request_id()
        body = ErrorBody(
            code="internal_error", message="the service failed to handle this request; try again later",
            details={"request_id": request_id} if request_id else None,
        )
        return JSONResponse(body.model_dump(exclude_none=True), status_code=500)


#: OpenAPI `responses` entry documenting the error body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 412, 422, 429)
}
