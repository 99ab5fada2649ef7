"""The composition root: settings in, the portal's FastAPI app out (sessions, identity provider, gateway)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment
from ksbb_kit.http import ObserveRequests
from starlette.exceptions import HTTPException as StarletteHTTPException

from ksbb_portal.api import ApiProblem, Gateway, Refresher, SignInRequired
from ksbb_portal.oidc import RelyingParty
from ksbb_portal.sessions import SessionStore
from ksbb_portal.settings import PortalSettings
from ksbb_portal.web import admin, auth, donor, facilitator, public, unit, webhooks
from ksbb_portal.web.context import NeedsSignIn, Parts, Refused, asset_version, page, sign_in_url, template_environment
from ksbb_portal.web.static import router as static_router

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[4]
DEFAULT_VENDOR = Path(__file__).resolve().parents[2] / "node_modules" / "htmx.org" / "dist"


def compiled_templates() -> Environment:
    """The template environment with every page compiled now, not while the first visitors wait."""
    env = template_environment()
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    return env


def build_parts(settings: PortalSettings) -> tuple[Parts, list[Callable[[], Awaitable[object]]]]:
    """The long-lived parts and how to close them."""
    if not settings.oidc_issuer:
        raise ValueError("the portal needs KSBB_OIDC_ISSUER (the identity provider's issuer URL) to sign people in")
    store, mongo = SessionStore.connect(
        settings.mongodb_url, settings.database_name, secret=settings.secret_key.get_secret_value().encode(),
        idle=timedelta(minutes=settings.session_idle_minutes),
        max_age=timedelta(hours=settings.session_max_hours), cache_bound_seconds=settings.session_cache_seconds,
    )
    rp = RelyingParty(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret.get_secret_value(),
                      scope=settings.oidc_scope, discovery_url=settings.oidc_discovery_url,
                      timeout=settings.api_timeout_seconds)
    gateway = Gateway(settings.api_url, timeout=settings.api_timeout_seconds, local_address=settings.api_bind_address,
                      public_cache_seconds=settings.public_cache_seconds)
    parts = Parts(
        settings=settings, store=store, rp=rp, gateway=gateway,
        refresher=Refresher(rp, store, settings.refresh_margin_seconds), templates=compiled_templates(),
        asset_version=asset_version(), vendor_dir=Path(settings.vendor_dir) if settings.vendor_dir else DEFAULT_VENDOR,
    )

    async def close_mongo() -> None:
        await mongo.close()

    return parts, [rp.aclose, gateway.aclose, close_mongo]


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    """The portal app; everything it needs is built here and closed when it stops."""
    settings = settings or PortalSettings.load()
    parts, closers = build_parts(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_clean_sessions(parts), name="portal-session-cleanup"),
                 asyncio.create_task(parts.store.follow_changes(), name="portal-session-changes")]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for close in closers:
                with contextlib.suppress(Exception):
                    await close()

    app = FastAPI(title="KSBB portal", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.parts = parts

    app.add_middleware(ObserveRequests, service="portal")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ok = await parts.store.ping()
        return JSONResponse({"status": "ready" if ok else "not ready", "mongodb": ok}, status_code=200 if ok else 503)

    for router in (static_router, auth.router, public.router, donor.router, unit.router, facilitator.router,
                   webhooks.router, admin.router):
        app.include_router(router)
    _install_error_pages(app)
    return app


async def _clean_sessions(parts: Parts) -> None:
    """Delete ended sessions now and then; one failure never stops the loop."""
    while True:
        try:
            removed = await parts.store.delete_ended()
            if removed:
                log.info("deleted %d ended sessions, sign-ins and tickets", removed)
        except Exception:
            log.exception("session cleanup failed; trying again later")
        await asyncio.sleep(parts.settings.cleanup_interval_seconds)


def _install_error_pages(app: FastAPI) -> None:
    """Errors become pages in the person's language (or a redirect to sign in)."""

    def to_sign_in(request: Request, return_to: str) -> Response:
        settings: PortalSettings = request.app.state.parts.settings
        target = sign_in_url(settings.root_path, return_to)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def error_page(request: Request, status: int, title_key: str, text_key: str, **values: str) -> Response:
        try:
            ctx = await page(request)
        except Exception:
            log.exception("could not build the error page")
            return PlainTextResponse("KSBB portal: the service is unavailable", status_code=503)
        role = ctx._(f"role_{ctx.role}") if ctx.role else ""
        return await ctx.render("error.html", status=status, title=ctx._(title_key), heading=ctx._(title_key),
                                message=ctx._(text_key, role=role, **values))

    @app.exception_handler(NeedsSignIn)
    async def _needs_sign_in(request: Request, exc: NeedsSignIn) -> Response:
        return to_sign_in(request, exc.return_to)

    @app.exception_handler(SignInRequired)
    async def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
        settings: PortalSettings = request.app.state.parts.settings
        back = request.url.path if request.method == "GET" else settings.root_path + "/"
        response = to_sign_in(request, back)
        response.delete_cookie(settings.cookie_name, path=settings.root_path)
        return response

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return await error_page(request, exc.status, "refused_title", exc.reason_key)

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> Response:
        if exc.status == 404:
            return await error_page(request, 404, "not_found_title", "not_found_text")
        if exc.status == 403:
            if exc.code == "account_incomplete":
                return await error_page(request, 403, "refused_title", "account_incomplete")
            return await error_page(request, 403, "refused_title", "refused_role")
        if exc.status >= 500 or exc.status == 429:
            return await error_page(request, 503, "unavailable_title", "unavailable_text")
        log.warning("unhandled API problem on %s: %s", request.url.path, exc)
        return await error_page(request, 400, "error_title", "unavailable_text")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return await error_page(request, 404, "not_found_title", "not_found_text")
        return HTMLResponse(str(exc.detail), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected failure on %s %s", request.method, request.url.path, exc_info=exc)
        return await error_page(request, 500, "error_title", "unavailable_text")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return await error_page(request, 404, "not_found_title", "not_found_text")
