"""Two portal processes on one session database (as the cluster runs two replicas): a session kept in one
process's memory ends there after a sign-out on the other, within the cache's bound, and a message left
after a form on one replica is shown by the other on the very next page."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from ksbb_kit.auth import DevIssuer
from ksbb_kit.testing.waiting import eventually
from ksbb_portal.sessions import Person, Session, SessionStore, Tokens, now_utc
from portal_testing import Stack, start_portal

pytestmark = pytest.mark.e2e


@pytest.fixture
async def second_portal(stack: Stack, portal_env: dict[str, Any]) -> AsyncIterator[tuple[str, Any]]:
    """Another portal process on the same database and gateway; its address and app."""
    settings, app, server, task = await start_portal(portal_env, api_url=stack.url, public_origin=stack.url,
                                                     trusted_proxy=stack.portal_settings.forwarded_allow_ips or "")
    assert settings.session_cache_seconds > 0, "the replicas keep sessions in memory (what this test is about)"
    try:
        yield f"http://127.0.0.1:{settings.http_port}", app
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=20)


async def donor_session(store: SessionStore, issuer: DevIssuer) -> Session:
    """A donor's portal session made in the shared store, holding a development access token."""
    token = issuer.token("donor", subject="replica-donor", ttl_seconds=3600)
    tokens = Tokens(access_token=token, access_expires_at=now_utc() + timedelta(hours=1))
    return await store.create(Person("replica-donor", "donor", "Dewi"), tokens, "id")


def cookie_header(**cookies: str) -> dict[str, str]:
    """The Cookie header a browser sends to /portal (the processes here are asked directly, without the prefix
    the gateway strips, so the cookies they set for /portal are sent by hand)."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def set_cookie(response: httpx.Response, name: str) -> str | None:
    """The value a response sets for a cookie ("" when it deletes it), None when it does not touch it."""
    for header in response.headers.get_list("set-cookie"):
        cookie_name, _, rest = header.partition("=")
        if cookie_name.strip() == name:
            return rest.split(";")[0].strip('"')
    return None


async def test_a_sign_out_on_one_replica_ends_the_session_on_the_other_within_the_bound(
    stack: Stack, second_portal: tuple[str, Any], dev_issuer: DevIssuer,
) -> None:
    first = f"http://127.0.0.1:{stack.portal_settings.http_port}"
    second, second_app = second_portal
    other: SessionStore = second_app.state.parts.store
    session = await donor_session(stack.store, dev_issuer)
    signed_in = cookie_header(**{stack.portal_settings.cookie_name: session.session_id})
    async with httpx.AsyncClient(timeout=20) as browser:
        shown = await browser.get(f"{second}/my/offers/new", headers=signed_in)
        assert shown.status_code == 200, shown.text[:500]
        assert session.key in other.cache._entries, "the second replica keeps the session in memory"

        signed_out = await browser.post(f"{first}/auth/sign-out", data={"csrf_token": session.csrf_token},
                                        headers=signed_in)
        assert signed_out.status_code == 200, signed_out.text[:500]
        assert set_cookie(signed_out, stack.portal_settings.cookie_name) == ""
        noted_at = other.cache.epoch
        # The bound: the second replica's first read of the change notes that began after the sign-out.
        await eventually(lambda: other.cache.epoch >= noted_at + 2, within=30, what="two reads of the notes")
        refused = await browser.get(f"{second}/my/offers/new", headers=signed_in)  # a kept (stolen) cookie
        assert refused.status_code == 303 and "/auth/sign-in" in refused.headers["location"]
        assert session.key not in other.cache._entries


async def test_a_language_or_a_message_left_on_one_replica_is_shown_by_the_other_on_the_next_page(
    stack: Stack, second_portal: tuple[str, Any], dev_issuer: DevIssuer,
) -> None:
    first = f"http://127.0.0.1:{stack.portal_settings.http_port}"
    second, second_app = second_portal
    other: SessionStore = second_app.state.parts.store
    await eventually(lambda: other.cache.usable(), within=30, what="the second replica read the notes")
    session = await donor_session(stack.store, dev_issuer)
    session_cookie = {stack.portal_settings.cookie_name: session.session_id}
    async with httpx.AsyncClient(timeout=20) as browser:
        kept = await browser.get(f"{second}/my/offers/new", headers=cookie_header(**session_cookie))
        assert kept.status_code == 200
        assert session.key in other.cache._entries, "the second replica keeps the session in memory"

        switched = await browser.get(f"{first}/my/offers/new", params={"lang": "en"},
                                     headers=cookie_header(**session_cookie))
        assert switched.status_code == 200 and '<html lang="en">' in switched.text
        lang = set_cookie(switched, "ksbb_lang")
        assert lang == "en"
        page = await browser.get(f"{second}/my/offers/new", headers=cookie_header(**session_cookie, ksbb_lang=lang))
        assert '<html lang="en">' in page.text, "the language chosen on the first replica, at once"

        saved = await browser.post(f"{first}/my/profile", headers=cookie_header(**session_cookie, ksbb_lang=lang),
                                   data={"csrf_token": session.csrf_token, "kind": "person", "display_name": "Dewi",
                                         "show_name": "1"})
        assert saved.status_code == 303, saved.text[:500]
        sync = set_cookie(saved, "ksbb_portal_sync")
        assert sync == "1"
        target = saved.headers["location"].removeprefix(stack.portal_settings.root_path)
        shown = await browser.get(second + target,
                                  headers=cookie_header(**session_cookie, ksbb_lang=lang, ksbb_portal_sync=sync))
        assert shown.status_code == 200
        assert "Profile saved." in shown.text, "the message, at once"
        assert set_cookie(shown, "ksbb_portal_sync") == "", "the page that showed it clears the cookie"
        again = await browser.get(f"{second}/my/offers/new", headers=cookie_header(**session_cookie, ksbb_lang=lang))
        assert "flash-success" not in again.text, "shown once"
