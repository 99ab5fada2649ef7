"""Routes of public concern reports: anyone reports (rate-limited), staff review and resolve."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from ksbb_kit.auth import OptionalPrincipal

from ksbb_registry.api import schemas
from ksbb_registry.api.deps import Cursor, Idempotency, IdempotencyKey, Limit, Reports, Staff, page
from ksbb_registry.api.responses import idempotent_create
from ksbb_registry.app.reports import ReportFilters
from ksbb_registry.domain.reports import NewReport, Report, Resolution

router = APIRouter(tags=["reports"])


def report_out(report: Report) -> schemas.ReportOut:
    """Response model of a report as reviewers see it."""
    return schemas.ReportOut.model_validate(report.model_dump())


@router.post(
    "/recipients/{recipient_id}/reports",
    status_code=201,
    response_model=schemas.ReportReceipt,
    summary="Report a concern about a recipient (public, no login; rate-limited per address)",
)
async def create_report(
    recipient_id: str,
    body: schemas.ReportCreate,
    request: Request,
    principal: OptionalPrincipal,
    reports: Reports,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    client = request.client.host if request.client else "unknown"
    caller = principal.subject if principal else f"ip:{client}"
    operation = f"report:{recipient_id}"
    command = NewReport(text=body.text, contact=body.contact)

    async def create(resource_id: str) -> tuple[schemas.ReportReceipt, str, int]:
        # Counted only when it runs: a retried report is replayed without counting against the limit.
        await reports.admit(recipient_id, client)
        report = await reports.submit(resource_id, recipient_id, command)
        return schemas.ReportReceipt(report_id=report.report_id, status=report.status), report.report_id, 0

    return await idempotent_create(idempotency, caller, operation, idempotency_key, body, "rpt", create)


@router.get(
    "/reports",
    response_model=schemas.Page[schemas.ReportOut],
    summary="List concern reports (admin: all; facilitator: own organisation)",
)
async def list_reports(
    principal: Staff,
    reports: Reports,
    recipient_id: str | None = None,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> schemas.Page[schemas.ReportOut]:
    found, next_cursor = await reports.find(
        principal, ReportFilters(recipient_id=recipient_id, status=status), page(limit, cursor)
    )
    return schemas.Page(items=[report_out(r) for r in found], next_cursor=next_cursor)


@router.post(
    "/reports/{report_id}/resolve",
    response_model=schemas.ReportOut,
    summary="Resolve a concern report (admin, own facilitator)",
)
async def resolve_report(
    report_id: str, body: schemas.ReportResolve, principal: Staff, reports: Reports
) -> schemas.ReportOut:
    resolution = Resolution(outcome=body.outcome, note=body.note)
    return report_out(await reports.resolve(report_id, resolution, principal))
