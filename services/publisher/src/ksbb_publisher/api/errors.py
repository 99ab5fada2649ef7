"""The one place mapping the publisher's domain errors to the project's error body (status, code, field)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ksbb_kit.errors import ApiError

from ksbb_publisher.domain.errors import (
    InvalidStreamPosition,
    NoPublicNeed,
    NoPublicRecipient,
    NoSnapshotFile,
    PublicationError,
    RegistrationsNotPublished,
    StreamCapacityReached,
    TooManyStreams,
    UnknownAreaCode,
)

#: Domain error -> (HTTP status, error code).
STATUS_AND_CODE: dict[type[PublicationError], tuple[int, str]] = {
    UnknownAreaCode: (422, "unknown_area"),
    RegistrationsNotPublished: (422, "not_public"),
    NoPublicRecipient: (404, "not_found"),
    NoPublicNeed: (404, "not_found"),
    NoSnapshotFile: (404, "not_found"),
    InvalidStreamPosition: (422, "invalid_stream_position"),
    TooManyStreams: (429, "too_many_streams"),
    StreamCapacityReached: (503, "stream_capacity_reached"),
}


def api_error(error: PublicationError) -> ApiError:
    """The API error of a domain error: its status and code, the rule's message and the field at fault."""
    status, code = STATUS_AND_CODE[type(error)]
    headers = None
    if isinstance(error, TooManyStreams | StreamCapacityReached):
        headers = {"Retry-After": str(error.retry_after_seconds)}
    return ApiError(status, code, str(error), field=error.field, headers=headers)


def install_error_mapping(app: FastAPI) -> None:
    """Answer every domain error raised by a route with the project's error body."""

    @app.exception_handler(PublicationError)
    async def _publication_error(_: Request, exc: PublicationError) -> JSONResponse:
        error = api_error(exc)
        return JSONResponse(
            error.body.model_dump(exclude_none=True), status_code=error.status, headers=error.headers
        )
