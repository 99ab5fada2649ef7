"""The OpenAPI documents list every response a route can give, including the ones the kit itself produces.

Routes document their own outcomes; the kit adds, centrally, what its machinery answers on any route:
500 (`internal_error`) everywhere, 400 (`malformed_json`) and 413 (`payload_too_large`, with the route's limit)
where a body is accepted, 422 (`validation_error`) where anything is parsed, 401/403 where a bearer token is
read, and 404 where a path names a resource. Every error uses the one `ErrorBody` schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from ksbb_kit.auth import current_principal, optional_principal
from ksbb_kit.errors import ErrorBody
from ksbb_kit.http_limits import MAX_BODY_EXTENSION

ERROR_SCHEMA_REF = "#/components/schemas/ErrorBody"
#: What each status means when the kit adds it (a route's own description wins).
COMMON_DESCRIPTIONS = {
    400: "The body is not valid JSON (`malformed_json`) or could not be read.",
    401: "No valid bearer token (`unauthenticated`, `invalid_token`).",
    403: "The token's account may not do this (`forbidden`).",
    404: "No such resource, or it is not visible to the caller (`not_found`).",
    413: "The body is larger than this route accepts (`payload_too_large`).",
    422: "A parameter or the body is not valid (`validation_error`, with the field).",
    500: "The service failed; the request id in `details` finds its log lines (`internal_error`).",
}
_AUTH_CALLS = (current_principal, optional_principal)


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _reads_token(route: APIRoute) -> bool:
    return any(dep.call in _AUTH_CALLS for dep in _dependencies(route.dependant))


def _operations_reading_tokens(app: FastAPI) -> set[tuple[str, str]]:
    """(path template, method) of every operation that authenticates its caller."""
    from fastapi.routing import iter_route_contexts  # FastAPI's walk through included routers

    found = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema and _reads_token(route):
            path = context.path_format or context.path or route.path_format
            found |= {(path, method.lower()) for method in route.methods or ()}
    return found


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}}}


def add_common_responses(schema: dict[str, Any], authenticated: set[tuple[str, str]], default_body_limit: int) -> None:
    """Add the kit's responses to every operation of an OpenAPI document (in place)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
    for path, operations in (schema.get("paths") or {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = {500}
            parameters = operation.get("parameters") or []
            if parameters or "requestBody" in operation:
                statuses.add(422)
            if "requestBody" in operation:
                statuses |= {400, 413}
                operation.setdefault(MAX_BODY_EXTENSION, default_body_limit)
            if any(p.get("in") == "path" for p in parameters):
                statuses.add(404)
            if (path, method) in authenticated:
                statuses |= {401, 403}
            responses = operation["responses"]
            for status in sorted(statuses):
                existing = responses.get(str(status))
                if existing is None:
                    responses[str(status)] = _error_response(COMMON_DESCRIPTIONS[status])
                elif not existing.get("content"):  # declared without a body: it is the error body
                    existing["content"] = _error_response("")["content"]
            if "422" in responses:  # FastAPI's own 422 model is not what the kit answers
                responses["422"]["content"] = _error_response("")["content"]
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 models, once nothing refers to them
        if f'"#/components/schemas/{unused}"' not in json.dumps(schema):
            components.pop(unused, None)


def document_common_responses(app: FastAPI, default_body_limit: int) -> None:
    """Make `app.openapi()` include the kit's common responses (computed once, like FastAPI's own)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            add_common_responses(schema, _operations_reading_tokens(app), default_body_limit)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
