"""Test support of the portal: the whole platform behind a real nginx gateway with the portal, Keycloak
accounts for each role, and a Chromium page that checks every page it visits (axe-core, no tokens,
screenshot)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from ksbb_kit.identity import KeycloakAdmin
from ksbb_kit.runtime import server_config
from ksbb_kit.testing.identity import CHROMIUM, CHROMIUM_ARGS, IdentityInfra, Mailpit
from ksbb_kit.testing.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "deploy" / "gateway"))

from ksbb_gateway.config import load_config  # noqa: E402
from ksbb_gateway.local import LocalGateway, free_port  # noqa: E402
from ksbb_gateway.sources import service_documents_async  # noqa: E402
from ksbb_gateway.testing import RELAXED, RunningService, start_service, stop_service  # noqa: E402
from ksbb_portal.bootstrap import create_app  # noqa: E402
from ksbb_portal.settings import PortalSettings  # noqa: E402

AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "portal"
PASSWORD = "Kolaborasi-Portal-2020"
#: The portal calls the gateway from this loopback address (the gateway's local target trusts it).
PORTAL_BIND = "127.0.0.3"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


@dataclass
class Account:
    """A Keycloak account of one role made for this test session."""

    role: str
    email: str
    password: str
    user_id: str


@dataclass
class Stack:
    """Services, portal and gateway of one test session."""

    url: str  # the gateway: the only address the browser uses
    services: dict[str, RunningService]
    portal_settings: PortalSettings
    portal_app: Any
    gateway: LocalGateway
    identity: IdentityInfra
    accounts: dict[str, Account] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def portal(self) -> str:
        """The portal's address through the gateway."""
        return f"{self.url}/portal"

    @property
    def store(self) -> Any:
        """The portal's session store (its own database)."""
        return self.portal_app.state.parts.store


async def master_token(identity: IdentityInfra) -> str:
    """A token of Keycloak's bootstrap administrator (development only) for realm configuration."""
    async with httpx.AsyncClient(timeout=15) as client:
        response = await client.post(
            f"{identity.keycloak_url}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                  "password": identity.admin_password},
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


async def allow_origin(identity: IdentityInfra, origin: str, *, remove: bool = False) -> None:
    """Register (or remove) a test gateway's origin as a redirect target of the portal's client."""
    token = await master_token(identity)
    realm = identity.issuer.rpartition("/realms/")[2]
    base = f"{identity.keycloak_url}/admin/realms/{realm}/clients"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=15, headers=headers) as client:
        found = (await client.get(base, params={"clientId": "ksbb-portal"})).json()
        client_doc = (await client.get(f"{base}/{found[0]['id']}")).json()
        wanted = f"{origin}/portal/*"
        uris = [u for u in client_doc.get("redirectUris", []) if u != wanted]
        logout = [u for u in (client_doc.get("attributes", {}).get("post.logout.redirect.uris") or "").split("##")
                  if u and u != wanted]
        if not remove:
            uris.append(wanted)
            logout.append(wanted)
        client_doc["redirectUris"] = uris
        client_doc.setdefault("attributes", {})["post.logout.redirect.uris"] = "##".join(logout)
        response = await client.put(f"{base}/{found[0]['id']}", json=client_doc)
        response.raise_for_status()


async def make_account(admin: KeycloakAdmin, role: str, **attributes: str) -> Account:
    """A verified account with a password, one realm role and its linking attributes."""
    email = f"portal-{role}-{secrets.token_hex(5)}@ksbb.example"
    user_id = await admin.create_user(email=email, first_name=role.capitalize(), last_name="Uji",
                                      attributes=attributes, email_verified=True)
    await admin.set_password(user_id, PASSWORD)
    await admin.add_realm_role(user_id, role)
    return Account(role, email, PASSWORD, user_id)


async def start_portal(env: dict[str, Any], *, api_url: str, public_origin: str,
                       trusted_proxy: str) -> tuple[PortalSettings, Any, Any, asyncio.Task[None]]:
    """The portal under uvicorn on a free port, configured as `make run` configures it."""
    import uvicorn

    settings = PortalSettings(
        env="test", mongodb_url=env["mongodb_url"], topic_prefix=env["topic_prefix"], oidc_issuer=env["oidc_issuer"],
        api_url=api_url, api_bind_address=PORTAL_BIND, public_origin=public_origin, forwarded_allow_ips=trusted_proxy,
        http_host="127.0.0.1", http_port=free_port(),
    )
    app = create_app(settings)
    server = uvicorn.Server(server_config(app, settings, lifespan="on", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(), name="serve-portal")

    async def ready() -> bool:
        if task.done():
            raise RuntimeError(f"the portal stopped before it was ready: {task.exception()!r}")
        async with httpx.AsyncClient(timeout=3) as client:
            return (await client.get(f"http://127.0.0.1:{settings.http_port}/readyz")).status_code == 200

    await eventually(ready, within=60, interval=0.2, what="portal ready")
    return settings, app, server, task


@contextlib.asynccontextmanager
async def running_stack(env: dict[str, Any], identity: IdentityInfra) -> AsyncIterator[Stack]:
    """The four services, the portal and one nginx gateway in front of them; stopped afterwards."""
    config = load_config().with_changes(**RELAXED)
    local = config.target("local")
    trusted = local.proxy_bind or "127.0.0.1"
    listen = f"127.0.0.1:{free_port()}"
    origin = f"http://{listen}"
    started: dict[str, RunningService] = {}
    gateway: LocalGateway | None = None
    portal_task: asyncio.Task[None] | None = None
    portal_server: Any = None
    overrides = {"notifier": {"insecure_http_hosts": ["127.0.0.1"], "ssrf_allow_hosts": ["127.0.0.1"],
                              "dispatch_sweep_seconds": 0.3},
                 "publisher": {"feed_poll_seconds": 0.5},
                 # Onboarding: the registry invites people through Keycloak's admin API.
                 "registry": {"identity_admin_client_secret": identity.admin_client_secret}}
    await allow_origin(identity, origin)
    try:
        for name in config.services:
            started[name] = await start_service(name, env, trusted_proxy=trusted, public_url=origin,
                                                **overrides.get(name, {}))
        settings, app, portal_server, portal_task = await start_portal(
            env, api_url=origin, public_origin=origin, trusted_proxy=trusted)
        upstreams = {name: s.url.removeprefix("http://") for name, s in started.items()}
        upstreams["portal"] = f"127.0.0.1:{settings.http_port}"
        documents = await service_documents_async(config.services)
        gateway = LocalGateway(Path(tempfile.mkdtemp(prefix="ksbb-portal-gateway-")), config=config,
                               target_changes={"listen": listen, "upstreams": upstreams})
        gateway.prepare(documents)
        gateway.start()
        yield Stack(url=origin, services=started, portal_settings=settings, portal_app=app, gateway=gateway,
                    identity=identity)
    finally:
        if gateway is not None:
            gateway.stop()
        if portal_server is not None and portal_task is not None:
            portal_server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(portal_task, timeout=20)
        for service in reversed(list(started.values())):
            await stop_service(service)
        with contextlib.suppress(Exception):
            await allow_origin(identity, origin, remove=True)


class Browser:
    """Debian's Chromium through Playwright (one per test session)."""

    def __init__(self, playwright: Any, browser: Any) -> None:
        self.playwright = playwright
        self.browser = browser

    async def context(self, *, phone: bool = False, javascript: bool = True, lang: str = "id") -> Any:
        """A fresh browser context (own cookies) with the viewport, JavaScript and locale of a variant."""
        context = await self.browser.new_context(
            viewport=PHONE if phone else DESKTOP, java_script_enabled=javascript,
            locale="en-GB" if lang == "en" else "id-ID", timezone_id="Asia/Jakarta",
        )
        context.set_default_timeout(20000)
        return context


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Start Chromium (Playwright must not download its own)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield Browser(pw, browser)
        finally:
            await browser.close()


@dataclass
class Visitor:
    """One person's browser tab: every portal page it lands on is checked and photographed."""

    stack: Stack
    page: Any
    name: str
    javascript: bool = True
    accessibility: bool = True  # axe-core on every page (the security tests visit pages the others check)
    shots: int = 0
    seen: list[str] = field(default_factory=list)

    async def goto(self, path: str) -> Any:
        """Open a portal page (path under /portal) and check it."""
        response = await self.page.goto(self.stack.portal + path, wait_until="load")
        await self.check()
        return response

    async def check(self, label: str | None = None) -> None:
        """axe-core (no serious or critical violation), no token anywhere in the page or its cookies, a screenshot."""
        url = self.page.url
        if not url.startswith(self.stack.portal):
            return
        self.seen.append(url)
        html = await self.page.content()
        assert not JWT.search(html), f"a JWT-shaped value is in the HTML of {url}"
        # Cookies the browser sends to the portal (the identity provider's own cookies live under its paths).
        for cookie in await self.page.context.cookies([self.stack.portal + "/"]):
            assert not JWT.search(cookie["value"]), f"cookie {cookie['name']} holds a JWT-shaped value"
        await self.no_session_tokens(html)
        self.shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = urlparse(url).path.removeprefix("/portal")
        # Generated ids change every run: name the page by its route.
        path = re.sub(r"/[a-z]+_[0-9a-z]{12,}", "/id", path)
        slug = re.sub(r"[^a-z0-9]+", "-", (label or path).lower()).strip("-")
        await self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{self.shots:02d}-{slug or 'home'}.png"),
                                   full_page=True)
        if self.javascript and self.accessibility:  # axe needs page timers, which stop with scripts off
            await axe_check(self.page)

    async def no_session_tokens(self, html: str) -> None:
        """None of the tokens the portal holds for any session appears in this page or its cookies."""
        cookies = " ".join(c["value"] for c in await self.page.context.cookies([self.stack.portal + "/"]))
        async for doc in self.stack.store.db.sessions.find({}, {"tokens": 1}):
            for name in ("access_token", "refresh_token", "id_token"):
                token = (doc.get("tokens") or {}).get(name)
                if token:
                    assert token not in html and token not in cookies, f"the {name} of a session reached the browser"

    async def settle(self) -> None:
        """Wait until htmx has no request in flight (nothing to wait for without JavaScript)."""
        if self.javascript:
            await self.page.wait_for_function("() => !document.querySelector('.htmx-request')")

    async def choose(self, selector: str, value: str) -> None:
        """Pick an option (with JavaScript the filter reloads its part of the page at once)."""
        await self.page.select_option(selector, value)
        await self.settle()

    async def submit(self, selector: str) -> Any:
        """Click a submit button and wait for the page that answers (a full load without JS, htmx's swap with)."""
        async with self.page.expect_response(lambda r: r.request.method == "POST") as answer:
            await self.page.click(selector)
        response = await answer.value
        await self.page.wait_for_load_state("load")
        if self.javascript:
            await self.page.wait_for_function("() => !document.querySelector('.htmx-request')")
        await self.check()
        return response


async def axe_check(page: Any) -> None:
    """Run axe-core in the page; fail on serious or critical violations."""
    source = AXE.read_text()
    await page.evaluate(source)
    result = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"] if v.get("impact") in ("serious", "critical")
    ]
    assert not bad, f"accessibility violations on {page.url}:\n" + "\n".join(bad)


async def sign_in(visitor: Visitor, account: Account, *, start: str = "/auth/sign-in") -> None:
    """Through the portal's sign-in link and Keycloak's hosted form, back to the portal."""
    page = visitor.page
    await page.goto(visitor.stack.portal + start)
    await page.wait_for_selector("#username", timeout=30000)
    await page.fill("#username", account.email)
    await page.fill("#password", account.password)
    await page.click("#kc-login")
    await page.wait_for_url(visitor.stack.portal + "/**", timeout=30000)
    await visitor.check("signed-in")


async def sign_up(visitor: Visitor, mailpit: Mailpit, email: str, password: str) -> None:
    """Create a donor account on Keycloak's sign-up page, verify the e-mail from Mailpit, land in the portal."""
    page = visitor.page
    await page.goto(visitor.stack.portal + "/auth/sign-up?next=/portal/needs")
    await page.wait_for_selector("#kc-register-form", timeout=30000)
    await page.fill("#email", email)
    await page.fill("#firstName", "Dewi")
    await page.fill("#lastName", "Lestari")
    await page.fill("#password", password)
    await page.fill("#password-confirm", password)
    await page.click("#kc-register-form [type=submit]")
    message = await mailpit.wait_for(email)
    links = [link for link in Mailpit.links(message) if "/login-actions/action-token" in link]
    assert links, f"no verification link in {message.get('Text')!r}"
    await page.goto(links[0])
    await page.wait_for_url(visitor.stack.portal + "/**", timeout=30000)
    await visitor.check("signed-up")


def json_dump(value: Any) -> str:
    """Readable JSON for assertion messages."""
    return json.dumps(value, indent=1, default=str)[:2000]
