"""Annotated dependencies of the registry's routes: the use cases, callers, request headers and paging."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Query, Request
from ksbb_contracts import limits
from ksbb_kit.auth import Principal, Role, require_roles
from ksbb_kit.http import IdempotencyStore, app_state_part, check_if_match

from ksbb_registry.api import errors
from ksbb_registry.app.members import MemberService
from ksbb_registry.app.needs import NeedService
from ksbb_registry.app.organisations import OrganisationService
from ksbb_registry.app.ports import Page, Precondition
from ksbb_registry.app.recipients import RecipientService
from ksbb_registry.app.reports import ReportService


@dataclass(frozen=True)
class Services:
    """What the routes call, handed over once by the composition root."""

    organisations: OrganisationService
    recipients: RecipientService
    needs: NeedService
    reports: ReportService
    members: MemberService
    idempotency: IdempotencyStore


def install(app: FastAPI, services: Services) -> None:
    """Give the app's routes their services and map the registry's rule errors to error responses."""
    app.state.registry = services
    errors.install(app)


def services_of(request: Request) -> Services:
    """The services the composition root installed."""
    services: Services = request.app.state.registry
    return services


Organisations = Annotated[OrganisationService, Depends(app_state_part("registry", "organisations"))]
Recipients = Annotated[RecipientService, Depends(app_state_part("registry", "recipients"))]
Needs = Annotated[NeedService, Depends(app_state_part("registry", "needs"))]
Reports = Annotated[ReportService, Depends(app_state_part("registry", "reports"))]
Members = Annotated[MemberService, Depends(app_state_part("registry", "members"))]
Idempotency = Annotated[IdempotencyStore, Depends(app_state_part("registry", "idempotency"))]

AdminOnly = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Staff = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.FACILITATOR))]

IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="ETag from a previous read; 412 if stale.")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=limits.IDEMPOTENCY_KEY[0],
        max_length=limits.IDEMPOTENCY_KEY[1],
        description="Retried creates with the same key return the first result.",
    ),
]
Limit = Annotated[int, Query(ge=limits.PAGE_SIZE[0], le=limits.PAGE_SIZE[1])]
Cursor = Annotated[
    str | None, Query(max_length=limits.CURSOR_MAX, description="next_cursor of the previous page")
]


def precondition(if_match: str | None) -> Precondition:
    """The If-Match header as a check on the version read (412 when it names another version)."""
    return partial(check_if_match, if_match)


def page(limit: int, cursor: str | None) -> Page:
    """The requested list page."""
    return Page(limit=limit, cursor=cursor)
