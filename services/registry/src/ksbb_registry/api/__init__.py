"""HTTP API of the registry (/v1): one router per resource; `deps` wires them to the use cases.

Route functions deliberately carry no docstring: FastAPI would publish it as the operation's description,
and the OpenAPI document is a contract (their `summary` says what they do).
"""

from __future__ import annotations

from fastapi import APIRouter
from ksbb_kit.errors import ERROR_RESPONSES

from ksbb_registry.api import areas, members, needs, organisations, recipients, reports


def build_api() -> APIRouter:
    """The registry's /v1 routes, in the order the OpenAPI document lists them."""
    api = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
    for resource in (areas, organisations, recipients, needs, reports, members):
        api.include_router(resource.router)
    return api
