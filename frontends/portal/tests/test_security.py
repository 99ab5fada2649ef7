"""Security of the portal in Chromium through the gateway: tokens stay on the server, CSRF, session fixation,
role separation, and sign-out at the portal and at Keycloak."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_portal.oidc import RefreshRefused
from portal_testing import Browser, Stack, Visitor, sign_in

pytestmark = pytest.mark.e2e


async def signed_in(browser: Browser, stack: Stack, role: str, name: str, *, javascript: bool = True) -> Visitor:
    """A tab with one role's account signed in."""
    context = await browser.context(javascript=javascript)
    visitor = Visitor(stack, await context.new_page(), name, javascript=javascript, accessibility=False)
    await sign_in(visitor, stack.accounts[role])
    return visitor


async def session_cookie(visitor: Visitor) -> dict[str, Any]:
    """The portal's session cookie in this browser."""
    cookies = await visitor.page.context.cookies([visitor.stack.portal + "/"])
    found = [c for c in cookies if c["name"] == visitor.stack.portal_settings.cookie_name]
    assert len(found) == 1, cookies
    return dict(found[0])


async def test_tokens_never_reach_the_browser_and_the_cookie_is_httponly_lax(
    stack: Stack, world: Any, browser: Browser,
) -> None:
    donor = await signed_in(browser, stack, "donor", "security-tokens")
    try:
        for path in ("/", "/needs", "/my/pledges", "/my/offers", "/my/profile", "/how-to-give"):
            await donor.goto(path)  # each visit checks HTML and cookies against every stored token
        cookie = await session_cookie(donor)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/portal"
        assert not cookie["secure"], "plain http in this test; Secure is set when the gateway says https"
        doc = await stack.store.db.sessions.find_one({"_id": stack.store.digest(cookie["value"])})
        assert doc is not None and doc["person"]["role"] == "donor", "the database keys sessions by digest only"
        assert await stack.store.db.sessions.count_documents({"_id": cookie["value"]}) == 0
        names = {c["name"] for c in await donor.page.context.cookies([stack.portal + "/"])}
        assert names <= {"ksbb_portal", "ksbb_lang"}, names
        scripts = await donor.page.eval_on_selector_all("script", "els => els.map(e => e.src + e.textContent)")
        assert all("/portal/static/htmx.min.js" in s for s in scripts), scripts
    finally:
        await donor.page.context.close()


async def test_forms_without_the_csrf_token_or_from_another_site_are_refused(
    stack: Stack, world: Any, browser: Browser,
) -> None:
    donor = await signed_in(browser, stack, "donor", "security-csrf")
    request = donor.page.context.request
    url = f"{stack.portal}/my/profile"
    form = {"kind": "person", "display_name": "Dewi", "show_name": "1"}
    try:
        await donor.goto("/my/profile")
        token = await donor.page.input_value("input[name=csrf_token]")
        missing = await request.post(url, form=form, max_redirects=0)
        assert missing.status == 403
        assert "kedaluwarsa" in await missing.text()
        wrong = await request.post(url, form={**form, "csrf_token": token[:-2] + "xx"}, max_redirects=0)
        assert wrong.status == 403
        foreign = await request.post(url, form={**form, "csrf_token": token}, max_redirects=0,
                                     headers={"Origin": "https://evil.example"})
        assert foreign.status == 403
        accepted = await request.post(url, form={**form, "csrf_token": token}, max_redirects=0)
        assert accepted.status == 303, await accepted.text()
    finally:
        await donor.page.context.close()


async def test_sign_in_always_issues_a_new_session_id(stack: Stack, world: Any, browser: Browser) -> None:
    context = await browser.context()
    planted = "attacker-chosen-session-id-0123456789abcdefghij"
    await context.add_cookies([{"name": stack.portal_settings.cookie_name, "value": planted, "domain": "127.0.0.1",
                                "path": "/portal"}])
    visitor = Visitor(stack, await context.new_page(), "security-fixation", accessibility=False)
    try:
        await sign_in(visitor, stack.accounts["donor"])
        first = (await session_cookie(visitor))["value"]
        assert first != planted
        assert await stack.store.get(planted) is None

        await visitor.page.click("#sign-out")
        await visitor.page.wait_for_url(f"{stack.portal}/**signed_out=1", timeout=30000)
        await sign_in(visitor, stack.accounts["donor"])
        second = (await session_cookie(visitor))["value"]
        assert second != first
        assert await stack.store.get(first) is None, "the earlier session is over"
        assert await stack.store.get(second) is not None
    finally:
        await context.close()


@pytest.mark.parametrize(("role", "refused", "own"), [
    ("donor", ["/org/verification", "/org/webhooks", "/unit/needs", "/admin", "/admin/organisations"], "/my/pledges"),
    ("facilitator", ["/my/pledges", "/my/profile", "/unit/pledges", "/admin"], "/org/recipients"),
    ("recipient", ["/my/offers", "/org/reports", "/org/webhooks/new", "/admin/staff"], "/unit/needs"),
    ("admin", ["/my/pledges", "/org/verification", "/unit/pledges"], "/admin/organisations"),
])
async def test_one_roles_pages_are_refused_to_another_role(
    stack: Stack, world: Any, browser: Browser, role: str, refused: list[str], own: str,
) -> None:
    visitor = await signed_in(browser, stack, role, f"security-roles-{role}")
    try:
        for path in refused:
            response = await visitor.goto(path)
            assert response.status == 403, f"{role} reached {path}"
        response = await visitor.goto(own)
        assert response.status == 200
        # A form posted to another role's action is refused too, even with this session's CSRF token.
        token = await visitor.page.input_value("input[name=csrf_token]")
        target = "/my/pledges/plg_x/cancel" if role != "donor" else "/org/recipients/rcp_x/lifecycle/verify"
        posted = await visitor.page.context.request.post(stack.portal + target, max_redirects=0,
                                                         form={"csrf_token": token, "reason": "x"})
        assert posted.status == 403
    finally:
        await visitor.page.context.close()


async def test_anonymous_visitors_are_sent_to_sign_in(stack: Stack, world: Any, browser: Browser) -> None:
    context = await browser.context()
    try:
        answer = await context.request.get(f"{stack.portal}/my/pledges", max_redirects=0)
        assert answer.status == 303
        assert answer.headers["location"] == "/portal/auth/sign-in?next=%2Fportal%2Fmy%2Fpledges"
    finally:
        await context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
async def test_sign_out_ends_the_session_at_the_portal_and_at_keycloak(
    stack: Stack, world: Any, browser: Browser, javascript: bool,
) -> None:
    visitor = await signed_in(browser, stack, "facilitator", f"security-sign-out-{'js' if javascript else 'nojs'}",
                              javascript=javascript)
    page = visitor.page
    try:
        cookie = await session_cookie(visitor)
        held = await stack.store.get(cookie["value"])
        assert held is not None and held.tokens.refresh_token
        await page.click("#sign-out")
        await page.wait_for_url(f"{stack.portal}/**signed_out=1", timeout=30000)
        await visitor.check("signed-out")
        assert await page.locator("#signed-out-note").count() == 1
        assert await stack.store.get(cookie["value"]) is None, "the portal's session is deleted"
        assert not [c for c in await page.context.cookies([stack.portal + "/"]) if c["name"] == cookie["name"]]

        # The old cookie opens nothing any more.
        await page.context.add_cookies([{"name": cookie["name"], "value": cookie["value"], "domain": "127.0.0.1",
                                         "path": "/portal"}])
        again = await page.context.request.get(f"{stack.portal}/org/recipients", max_redirects=0)
        assert again.status == 303 and "/auth/sign-in" in again.headers["location"]

        # Keycloak ended its session too: the refresh token is refused, and signing in asks for the password.
        with pytest.raises(RefreshRefused):
            await stack.portal_app.state.parts.rp.refresh(held.tokens.refresh_token)
        await page.goto(f"{stack.portal}/auth/sign-in")
        await page.wait_for_selector("#username", timeout=30000)
    finally:
        await page.context.close()
