"""HTTP routes of the registry service (/v1): organisations, recipients, needs, reports, areas, catalogue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from ksbb_contracts.areas import UnknownArea, areas
from ksbb_contracts.vocab import (
    Item,
    NeedStatus,
    OrganisationStatus,
    Priority,
    RecipientKind,
    RecipientStatus,
)
from ksbb_kit.auth import CurrentPrincipal, OptionalPrincipal, Principal, Role, require_roles
from ksbb_kit.errors import ERROR_RESPONSES, ApiError
from ksbb_kit.http import etag_for, fingerprint
from ksbb_kit.ids import derived_id, new_id

from ksbb_registry.api import schemas
from ksbb_registry.domain import rules
from ksbb_registry.domain.rules import Action
from ksbb_registry.service import RegistryService, forbidden, may_act_for, may_manage

IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="ETag from a previous read; 412 if stale.")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Retried creates with the same key return the first result.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
AdminOnly = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Staff = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.FACILITATOR))]


def service_of(request: Request) -> RegistryService:
    """The service object wired by the composition root."""
    return request.app.state.registry


Service = Annotated[RegistryService, Depends(service_of)]


def _with_etag(model: Any, resource_id: str, version: int, status: int = 200) -> JSONResponse:
    return JSONResponse(
        model.model_dump(mode="json"), status_code=status, headers={"ETag": etag_for(resource_id, version)}
    )


def organisation_out(doc: dict[str, Any]) -> schemas.OrganisationOut:
    """Response model of an organisation document."""
    return schemas.OrganisationOut(organisation_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


def recipient_out(doc: dict[str, Any]) -> schemas.RecipientOut:
    """Response model of a recipient document."""
    fields = set(schemas.RecipientOut.model_fields) - {"recipient_id"}
    return schemas.RecipientOut(recipient_id=doc["_id"], **{k: doc.get(k) for k in fields if k in doc})


def need_out(doc: dict[str, Any]) -> schemas.NeedOut:
    """Response model of a need document."""
    fields = set(schemas.NeedOut.model_fields) - {"need_id"}
    return schemas.NeedOut(need_id=doc["_id"], **{k: doc.get(k) for k in fields if k in doc})


def report_out(doc: dict[str, Any]) -> schemas.ReportOut:
    """Response model of a report document."""
    fields = set(schemas.ReportOut.model_fields) - {"report_id"}
    return schemas.ReportOut(report_id=doc["_id"], **{k: doc.get(k) for k in fields if k in doc})


async def idempotent_create(
    request: Request,
    service: RegistryService,
    caller: str,
    operation: str,
    key: str | None,
    body: Any,
    prefix: str,
    create: Callable[[str], Awaitable[tuple[Any, str, int]]],
) -> JSONResponse:
    """Run a create once per (caller, operation, Idempotency-Key): retries get the first response."""
    store = service.runtime.idempotency
    request_hash = fingerprint(body.model_dump(mode="json"))
    if key:
        stored = await store.recall(caller, operation, key, request_hash)
        if stored is not None:
            headers = {"Idempotent-Replayed": "true"}
            if isinstance(stored["body"], dict) and "version" in stored["body"]:
                resource_id = next(
                    (v for k, v in stored["body"].items() if k.endswith("_id") and str(v).startswith(prefix)),
                    None,
                )
                if resource_id:
                    headers["ETag"] = etag_for(resource_id, stored["body"]["version"])
            return JSONResponse(stored["body"], status_code=stored["status"], headers=headers)
    resource_id = derived_id(prefix, caller, operation, key) if key else new_id(prefix)
    model, rid, version = await create(resource_id)
    payload = model.model_dump(mode="json")
    if key:
        await store.remember(caller, operation, key, request_hash, 201, payload)
    return JSONResponse(payload, status_code=201, headers={"ETag": etag_for(rid, version)} if version else {})


def build_api() -> APIRouter:
    """The registry service's /v1 routes."""
    api = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

    # -- reference data ----------------------------------------------------------------------

    @api.get(
        "/areas",
        tags=["areas"],
        response_model=list[schemas.AreaOut],
        summary="Areas of DKI Jakarta, optionally the children of one area (public)",
    )
    async def list_areas(
        parent: Annotated[str | None, Query(description="e.g. 31.71")] = None,
        level: Literal["provinsi", "kota", "kecamatan", "kelurahan"] | None = None,
    ) -> list[schemas.AreaOut]:
        directory = areas()
        if parent is not None:
            if parent not in directory:
                raise ApiError(422, "unknown_area", f"unknown area code {parent!r}", field="parent")
            found = directory.children(parent)
        elif level is not None:
            found = directory.level(level)
        else:
            found = list(directory)
        return [schemas.AreaOut(code=a.code, name=a.name, level=a.level, parent=a.parent) for a in found]

    @api.get("/areas/tree", tags=["areas"], summary="The whole area hierarchy as a tree (public)")
    async def area_tree() -> dict[str, Any]:
        directory = areas()
        return {
            "version": directory.version,
            "source": directory.source,
            "tree": directory.tree().model_dump(),
        }

    @api.get("/areas/{code}", tags=["areas"], response_model=schemas.AreaOut, summary="One area (public)")
    async def get_area(code: str) -> schemas.AreaOut:
        try:
            area = areas().require(code)
        except UnknownArea as exc:
            raise ApiError(404, "unknown_area", str(exc), field="code") from exc
        return schemas.AreaOut(code=area.code, name=area.name, level=area.level, parent=area.parent)

    @api.get(
        "/catalogue",
        tags=["needs"],
        response_model=list[schemas.CatalogueItemOut],
        summary="Aid item catalogue with KSBB reference packages (public)",
    )
    async def catalogue() -> list[schemas.CatalogueItemOut]:
        return [schemas.CatalogueItemOut(**entry.__dict__) for entry in rules.CATALOGUE]

    # -- organisations -----------------------------------------------------------------------

    @api.post(
        "/organisations",
        tags=["organisations"],
        status_code=201,
        response_model=schemas.OrganisationOut,
        summary="Register a facilitator organisation (admin)",
    )
    async def create_organisation(
        body: schemas.OrganisationCreate,
        request: Request,
        principal: AdminOnly,
        service: Service,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        async def create(resource_id: str) -> tuple[Any, str, int]:
            doc, _ = await service.create_organisation(resource_id, body)
            return organisation_out(doc), doc["_id"], doc["version"]

        return await idempotent_create(
            request, service, principal.subject, "create_organisation", idempotency_key, body, "org", create
        )

    @api.get(
        "/organisations",
        tags=["organisations"],
        response_model=schemas.Page[schemas.OrganisationOut],
        summary="List organisations (admin: all; facilitator: own)",
    )
    async def list_organisations(
        principal: Staff,
        service: Service,
        status: OrganisationStatus | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> schemas.Page[schemas.OrganisationOut]:
        docs, next_cursor = await service.list_organisations(
            principal, status=status.value if status else None, limit=limit, cursor=cursor
        )
        return schemas.Page(items=[organisation_out(d) for d in docs], next_cursor=next_cursor)

    @api.get(
        "/organisations/{organisation_id}",
        tags=["organisations"],
        response_model=schemas.OrganisationOut,
        summary="Read an organisation (admin, own facilitator)",
    )
    async def get_organisation(organisation_id: str, principal: Staff, service: Service) -> JSONResponse:
        if not (principal.is_admin or principal.is_facilitator_of(organisation_id)):
            raise forbidden()
        doc = await service.get_organisation(organisation_id)
        return _with_etag(organisation_out(doc), doc["_id"], doc["version"])

    @api.patch(
        "/organisations/{organisation_id}",
        tags=["organisations"],
        response_model=schemas.OrganisationOut,
        summary="Change an organisation (admin; If-Match)",
    )
    async def update_organisation(
        organisation_id: str,
        body: schemas.OrganisationUpdate,
        principal: AdminOnly,
        service: Service,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        doc = await service.update_organisation(organisation_id, body, if_match)
        return _with_etag(organisation_out(doc), doc["_id"], doc["version"])

    @api.post(
        "/organisations/{organisation_id}/suspend",
        tags=["organisations"],
        response_model=schemas.OrganisationOut,
        summary="Suspend an organisation (admin)",
    )
    async def suspend_organisation(
        organisation_id: str, body: schemas.OrganisationStatusChange, principal: AdminOnly, service: Service
    ) -> JSONResponse:
        doc = await service.set_organisation_status(
            organisation_id, OrganisationStatus.SUSPENDED, body.reason, principal
        )
        return _with_etag(organisation_out(doc), doc["_id"], doc["version"])

    @api.post(
        "/organisations/{organisation_id}/reinstate",
        tags=["organisations"],
        response_model=schemas.OrganisationOut,
        summary="Reinstate an organisation (admin)",
    )
    async def reinstate_organisation(
        organisation_id: str, body: schemas.OrganisationStatusChange, principal: AdminOnly, service: Service
    ) -> JSONResponse:
        doc = await service.set_organisation_status(
            organisation_id, OrganisationStatus.ACTIVE, body.reason, principal
        )
        return _with_etag(organisation_out(doc), doc["_id"], doc["version"])

    # -- recipients --------------------------------------------------------------------------

    @api.post(
        "/recipients",
        tags=["recipients"],
        status_code=201,
        response_model=schemas.RecipientOut,
        summary="Register a recipient (admin, facilitator of its organisation)",
    )
    async def create_recipient(
        body: schemas.RecipientCreate,
        request: Request,
        principal: Staff,
        service: Service,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        async def create(resource_id: str) -> tuple[Any, str, int]:
            doc, _ = await service.create_recipient(resource_id, body, principal)
            return recipient_out(doc), doc["_id"], doc["version"]

        return await idempotent_create(
            request, service, principal.subject, "create_recipient", idempotency_key, body, "rcp", create
        )

    @api.get(
        "/recipients",
        tags=["recipients"],
        response_model=schemas.Page[schemas.RecipientOut],
        summary="List recipients (admin: all; facilitator: own organisation)",
    )
    async def list_recipients(
        principal: Staff,
        service: Service,
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
        filters = {
            "kind": kind.value if kind else None,
            "status": status.value if status else None,
            "kota_code": kota,
            "kecamatan_code": kecamatan,
            "kelurahan_code": kelurahan,
            "organisation_id": organisation_id,
        }
        docs, next_cursor = await service.list_recipients(principal, filters, has_open_needs, limit, cursor)
        return schemas.Page(items=[recipient_out(d) for d in docs], next_cursor=next_cursor)

    @api.get(
        "/recipients/{recipient_id}",
        tags=["recipients"],
        response_model=schemas.RecipientOut,
        summary="Read a recipient with its contact (admin, own facilitator, own account)",
    )
    async def get_recipient(recipient_id: str, principal: CurrentPrincipal, service: Service) -> JSONResponse:
        doc = await service.get_recipient(recipient_id)
        if not may_act_for(principal, doc):
            raise forbidden()
        return _with_etag(recipient_out(doc), doc["_id"], doc["version"])

    @api.patch(
        "/recipients/{recipient_id}",
        tags=["recipients"],
        response_model=schemas.RecipientOut,
        summary="Change a recipient (admin, own facilitator; own account: contact only; If-Match)",
    )
    async def update_recipient(
        recipient_id: str,
        body: schemas.RecipientUpdate,
        principal: CurrentPrincipal,
        service: Service,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        doc = await service.update_recipient(recipient_id, body, principal, if_match)
        return _with_etag(recipient_out(doc), doc["_id"], doc["version"])

    @api.get(
        "/recipients/{recipient_id}/audit",
        tags=["recipients"],
        response_model=list[schemas.AuditEntry],
        summary="Audit trail of a recipient (admin, own facilitator)",
    )
    async def recipient_audit(
        recipient_id: str, principal: Staff, service: Service
    ) -> list[schemas.AuditEntry]:
        doc = await service.get_recipient(recipient_id)
        if not may_manage(principal, doc):
            raise forbidden()
        return [schemas.AuditEntry(**entry) for entry in doc.get("audit", [])]

    def transition_route(action: Action, who: str) -> None:
        async def run(
            recipient_id: Annotated[str, Path()],
            body: schemas.TransitionRequest,
            principal: CurrentPrincipal,
            service: Service,
            if_match: IfMatch = None,
        ) -> JSONResponse:
            doc = await service.transition_recipient(recipient_id, action, body, principal, if_match)
            return _with_etag(recipient_out(doc), doc["_id"], doc["version"])

        run.__name__ = f"{action.value}_recipient"
        api.post(
            f"/recipients/{{recipient_id}}/{action.value}",
            tags=["recipients"],
            response_model=schemas.RecipientOut,
            summary=f"{action.value.capitalize()} a recipient ({who})",
        )(run)

    transition_route(Action.VERIFY, "admin, own facilitator; note required")
    transition_route(Action.ACTIVATE, "admin, own facilitator")
    transition_route(Action.SUSPEND, "admin, own facilitator; reason required; closes open needs")
    transition_route(Action.REINSTATE, "admin")
    transition_route(Action.ARCHIVE, "admin; reason required; erases the contact person")

    @api.get(
        "/recipients/{recipient_id}/need-suggestions",
        tags=["needs"],
        response_model=list[schemas.SuggestionOut],
        summary="Needs suggested from beneficiary counts (admin, own facilitator, own account)",
    )
    async def need_suggestions(
        recipient_id: str, principal: CurrentPrincipal, service: Service
    ) -> list[schemas.SuggestionOut]:
        doc = await service.get_recipient(recipient_id)
        if not may_act_for(principal, doc):
            raise forbidden()
        b = doc["beneficiaries"]
        found = rules.suggest_needs(
            RecipientKind(doc["kind"]),
            b["households"],
            b["people"],
            b.get("children", 0),
            b.get("elderly", 0),
            b.get("disabled", 0),
        )
        return [schemas.SuggestionOut(**s.__dict__) for s in found]

    # -- needs -------------------------------------------------------------------------------

    @api.post(
        "/recipients/{recipient_id}/needs",
        tags=["needs"],
        status_code=201,
        response_model=schemas.NeedOut,
        summary="Post a need for an active recipient (admin, own facilitator, own account)",
    )
    async def create_need(
        recipient_id: str,
        body: schemas.NeedCreate,
        request: Request,
        principal: CurrentPrincipal,
        service: Service,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        async def create(resource_id: str) -> tuple[Any, str, int]:
            doc, _ = await service.create_need(resource_id, recipient_id, body, principal)
            return need_out(doc), doc["_id"], doc["version"]

        return await idempotent_create(
            request,
            service,
            principal.subject,
            f"create_need:{recipient_id}",
            idempotency_key,
            body,
            "need",
            create,
        )

    @api.get(
        "/needs",
        tags=["needs"],
        response_model=schemas.Page[schemas.NeedOut],
        summary="List needs (admin: all; facilitator: own organisation; recipient: own)",
    )
    async def list_needs(
        principal: CurrentPrincipal,
        service: Service,
        recipient_id: str | None = None,
        organisation_id: str | None = None,
        status: NeedStatus | None = None,
        item: Item | None = None,
        priority: Priority | None = None,
        kota: str | None = None,
        kecamatan: str | None = None,
        kelurahan: str | None = None,
        series_id: str | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> schemas.Page[schemas.NeedOut]:
        filters = {
            "recipient_id": recipient_id,
            "organisation_id": organisation_id,
            "status": status.value if status else None,
            "item": item.value if item else None,
            "priority": priority.value if priority else None,
            "kota_code": kota,
            "kecamatan_code": kecamatan,
            "kelurahan_code": kelurahan,
            "series_id": series_id,
        }
        docs, next_cursor = await service.list_needs(principal, filters, limit, cursor)
        return schemas.Page(items=[need_out(d) for d in docs], next_cursor=next_cursor)

    @api.get(
        "/needs/{need_id}",
        tags=["needs"],
        response_model=schemas.NeedOut,
        summary="Read a need (admin, own facilitator, own account)",
    )
    async def get_need(need_id: str, principal: CurrentPrincipal, service: Service) -> JSONResponse:
        doc = await service.need_for_reader(need_id, principal)
        return _with_etag(need_out(doc), doc["_id"], doc["version"])

    @api.patch(
        "/needs/{need_id}",
        tags=["needs"],
        response_model=schemas.NeedOut,
        summary="Change an open need (admin, own facilitator, own account; If-Match)",
    )
    async def update_need(
        need_id: str,
        body: schemas.NeedUpdate,
        principal: CurrentPrincipal,
        service: Service,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        doc = await service.update_need(need_id, body, principal, if_match)
        return _with_etag(need_out(doc), doc["_id"], doc["version"])

    @api.post(
        "/needs/{need_id}/cancel",
        tags=["needs"],
        response_model=schemas.NeedOut,
        summary="Cancel an open need (admin, own facilitator, own account)",
    )
    async def cancel_need(
        need_id: str,
        body: schemas.CancelRequest,
        principal: CurrentPrincipal,
        service: Service,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        doc = await service.cancel_need(need_id, body.reason, principal, if_match)
        return _with_etag(need_out(doc), doc["_id"], doc["version"])

    # -- concern reports ---------------------------------------------------------------------

    @api.post(
        "/recipients/{recipient_id}/reports",
        tags=["reports"],
        status_code=201,
        response_model=schemas.ReportReceipt,
        summary="Report a concern about a recipient (public, no login; rate-limited per address)",
    )
    async def create_report(
        recipient_id: str,
        body: schemas.ReportCreate,
        request: Request,
        principal: OptionalPrincipal,
        service: Service,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        client = request.client.host if request.client else "unknown"
        caller = principal.subject if principal else f"ip:{client}"
        if idempotency_key:
            stored = await service.runtime.idempotency.recall(
                caller, f"report:{recipient_id}", idempotency_key, fingerprint(body.model_dump(mode="json"))
            )
            if stored is not None:
                return JSONResponse(stored["body"], status_code=stored["status"])
        await service.get_recipient(recipient_id)
        await service.check_report_rate(client)

        async def create(resource_id: str) -> tuple[Any, str, int]:
            doc = await service.create_report(resource_id, recipient_id, body)
            return schemas.ReportReceipt(report_id=doc["_id"], status=doc["status"]), doc["_id"], 0

        return await idempotent_create(
            request, service, caller, f"report:{recipient_id}", idempotency_key, body, "rpt", create
        )

    @api.get(
        "/reports",
        tags=["reports"],
        response_model=schemas.Page[schemas.ReportOut],
        summary="List concern reports (admin: all; facilitator: own organisation)",
    )
    async def list_reports(
        principal: Staff,
        service: Service,
        recipient_id: str | None = None,
        status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> schemas.Page[schemas.ReportOut]:
        docs, next_cursor = await service.list_reports(
            principal, recipient_id=recipient_id, status=status, limit=limit, cursor=cursor
        )
        return schemas.Page(items=[report_out(d) for d in docs], next_cursor=next_cursor)

    @api.post(
        "/reports/{report_id}/resolve",
        tags=["reports"],
        response_model=schemas.ReportOut,
        summary="Resolve a concern report (admin, own facilitator)",
    )
    async def resolve_report(
        report_id: str, body: schemas.ReportResolve, principal: Staff, service: Service
    ) -> schemas.ReportOut:
        return report_out(await service.resolve_report(report_id, body, principal))

    return api


__all__ = ["Response", "build_api"]
