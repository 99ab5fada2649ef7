"""API errors as JSON: a machine-readable code, a message and the offending field path."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

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

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The framework's own refusals (unknown path, method not allowed with its Allow header, unreadable
        # body, body too large) get the same body as ours instead of `{"detail": ...}`.
        code, message = _HTTP_ERRORS.get(exc.status_code, (f"http_{exc.status_code}", str(exc.detail)))
        limit = getattr(exc, "limit", None)
        body = ErrorBody(code=code, message=str(exc.detail) if limit is not None else message,
                         details={"max_body_bytes": limit} if limit is not None else None)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and all(e.get("type") == "json_invalid" for e in errors):
            context = errors[0].get("ctx") or {}
            detail = f": {context['error']}" if "error" in context else ""
            malformed = ErrorBody(code="malformed_json", message=f"the body is not valid JSON{detail}", field="body")
            return JSONResponse(malformed.model_dump(exclude_none=True), status_code=400)
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


#: The body of the framework's own HTTP errors, by status.
_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("malformed_body", "the request body could not be read (send UTF-8 JSON)"),
    404: ("not_found", "no such resource or path"),
    405: ("method_not_allowed", "this method is not allowed here; the Allow header lists the ones that are"),
    413: ("payload_too_large", "the request body is too large"),
}


#: OpenAPI `responses` entry documenting the error body (503: busy or a dependency unreachable for a
#: moment; nothing was written, and `Retry-After` says when to send the same request again).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 412, 422, 429, 503)
}
