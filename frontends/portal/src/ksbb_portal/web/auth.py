"""Signing in, signing up and signing out: authorisation code + PKCE with the portal's confidential client.

The browser only ever holds two cookies, both HttpOnly and SameSite=Lax (Secure under TLS): a short-lived
one binding a started sign-in to this browser, and the session id. A successful sign-in always gets a new
session id, and any session the browser had before is ended (no session fixation).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from ksbb_kit.errors import ApiError

from ksbb_portal.oidc import SignInFailed, person_of
from ksbb_portal.sessions import Tokens, new_secret, now_utc
from ksbb_portal.web.context import Page, PageDep, safe_return_to

log = logging.getLogger(__name__)
router = APIRouter(prefix="/auth", include_in_schema=False)
LOGIN_COOKIE = "ksbb_portal_login"


async def _start(ctx: Page, next_path: str | None, *, sign_up: bool) -> Response:
    settings = ctx.settings
    return_to = safe_return_to(next_path, settings.root_path)
    if ctx.session is not None:
        return ctx.finish(RedirectResponse(return_to, status_code=303))
    binding = new_secret()
    attempt = await ctx.parts.store.start_login(
        binding, return_to, ctx.lang, ctx.request.cookies.get(settings.cookie_name),
        timedelta(minutes=settings.login_minutes),
    )
    target = await ctx.parts.rp.authorization_url(
        settings.redirect_uri, state=attempt.state, nonce=attempt.nonce, code_verifier=attempt.code_verifier,
        lang=ctx.lang, sign_up=sign_up,
    )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(LOGIN_COOKIE, binding, max_age=settings.login_minutes * 60, path=f"{settings.root_path}/auth",
                        httponly=True, samesite="lax", secure=ctx.secure)
    return ctx.finish(response)


@router.get("/sign-in")
async def sign_in(ctx: PageDep, next: str | None = None) -> Response:
    """Off to the identity provider's sign-in page."""
    return await _start(ctx, next, sign_up=False)


@router.get("/sign-up")
async def sign_up(ctx: PageDep, next: str | None = None) -> Response:
    """Off to the identity provider's sign-up page (new accounts are donors)."""
    return await _start(ctx, next, sign_up=True)


@router.get("/callback")
async def callback(ctx: PageDep, state: str = "", code: str = "", error: str | None = None) -> Response:
    """Back from the provider: check the state against this browser, exchange the code, start a new session."""
    settings, store = ctx.settings, ctx.parts.store
    attempt = await store.finish_login(state, ctx.request.cookies.get(LOGIN_COOKIE))
    if attempt is None or error or not code:
        log.info("sign-in callback refused (attempt %s, error %s)", "found" if attempt else "unknown", error)
        return await _failed(ctx)
    ctx.lang = attempt.lang
    try:
        answer, claims = await ctx.parts.rp.exchange(code, settings.redirect_uri, attempt.code_verifier,
                                                     attempt.nonce)
    except SignInFailed as exc:
        log.warning("sign-in failed: %s", exc)
        return await _failed(ctx)
    tokens = Tokens.from_response(answer, now_utc())
    try:
        person = person_of(tokens.access_token, claims)
    except ApiError as exc:
        # A facilitator or recipient account not linked yet: no session, and the provider's ends too.
        await ctx.parts.rp.logout_back_channel(tokens.refresh_token)
        key = "account_incomplete" if exc.body.code == "account_incomplete" else "refused_title"
        return await ctx.render("error.html", status=403, title=ctx._("refused_title"),
                                heading=ctx._("refused_title"), message=ctx._(key))
    # Whatever session this browser had (the cookie now, or when the sign-in started) ends here.
    for old in filter(None, (attempt.previous_session_key, ctx.session.key if ctx.session else None)):
        await store.end(old)
    session = await store.create(person, tokens, attempt.lang)
    ctx.session = session
    await ctx.flash("success", "welcome_back", name=person.name or person.email or "")
    response = RedirectResponse(attempt.return_to, status_code=303)
    response.set_cookie(settings.cookie_name, session.session_id, max_age=int(settings.session_max_hours * 3600),
                        path=settings.root_path, httponly=True, samesite="lax", secure=ctx.secure)
    response.delete_cookie(LOGIN_COOKIE, path=f"{settings.root_path}/auth")
    return ctx.finish(response)


async def _failed(ctx: Page) -> HTMLResponse:
    return await ctx.render("error.html", status=400, title=ctx._("sign_in_failed_title"),
                            heading=ctx._("sign_in_failed_title"), message=ctx._("sign_in_failed_text"))


@router.post("/sign-out")
async def sign_out(ctx: PageDep) -> Response:
    """End the session here and at the provider (back-channel), then let the browser clear the provider's cookies."""
    await ctx.form()  # CSRF: nobody signs anyone out from another site
    assert ctx.session is not None
    ended = await ctx.parts.store.end(ctx.session.key)
    refresh_token = ((ended or {}).get("tokens") or {}).get("refresh_token")
    await ctx.parts.rp.logout_back_channel(refresh_token)
    ctx.session = None
    provider_logout = await ctx.parts.rp.end_session_url(f"{ctx.settings.home_url}?signed_out=1")
    response = await ctx.render("signed_out.html", title=ctx._("signed_out_title"), provider_logout=provider_logout)
    response.delete_cookie(ctx.settings.cookie_name, path=ctx.settings.root_path)
    return response
