"""Test support for identity: the run's Keycloak and Mailpit, read mail, sign in through the hosted pages.

Import the fixtures into a conftest (`from ksbb_kit.testing.identity import identity_infra, mailpit`).
Keycloak and Mailpit come from the environment (`KSBB_OIDC_ISSUER`, `KSBB_MAILPIT_URL`, written by
`deploy/local/infra`) or are started once per run with `deploy/local/infra up keycloak`; when neither works
the test fails with the reason, it is never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from ksbb_kit.oidc import OidcClient, TokenSet, pkce_pair
from ksbb_kit.testing.infra import read_env_file, repo_root
from ksbb_kit.wakeup import woken

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Registered for the browser client in deploy/identity/ksbb-realm.json (the gateway's origin); tests intercept it.
CALLBACK = "http://127.0.0.1:8080/callback"


@dataclass(frozen=True)
class IdentityInfra:
    """Where the run's identity provider and mail sink are, and their development-only credentials."""

    issuer: str
    keycloak_url: str
    mailpit_url: str
    admin_password: str
    cli_secret: str
    admin_client_secret: str
    how: str


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except Exception:
        return False


def _from(values: dict[str, str], how: str) -> IdentityInfra | None:
    issuer, mailpit = values.get("KSBB_OIDC_ISSUER"), values.get("KSBB_MAILPIT_URL")
    if not issuer or not mailpit:
        return None
    if not (_answers(issuer + "/.well-known/openid-configuration") and _answers(mailpit + "/api/v1/info")):
        return None
    return IdentityInfra(
        issuer=issuer, keycloak_url=values.get("KSBB_KEYCLOAK_URL", issuer.rpartition("/realms/")[0]),
        mailpit_url=mailpit, admin_password=values.get("KSBB_KEYCLOAK_ADMIN_PASSWORD", "dev-only-keycloak-admin"),
        cli_secret=values.get("KSBB_OIDC_CLI_SECRET", "dev-only-ksbb-cli-secret"),
        admin_client_secret=values.get("KSBB_REGISTRY_IDENTITY_ADMIN_CLIENT_SECRET",
                                       "dev-only-ksbb-registry-admin-secret"),
        how=how,
    )


def resolve_identity_infra() -> IdentityInfra:
    """Keycloak + Mailpit from the environment, else started by `deploy/local/infra up keycloak`."""
    found = _from(dict(os.environ), "environment")
    if found:
        return found
    root = repo_root()
    result = subprocess.run([str(root / "deploy" / "local" / "infra"), "up", "keycloak"], capture_output=True,
                            text=True, timeout=1200)
    if result.returncode != 0:
        raise RuntimeError(
            "Keycloak and Mailpit are needed (Java 17+, Maven and Go install them on first use) and "
            f"`deploy/local/infra up keycloak` failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    env_file = Path(os.environ.get("KSBB_INFRA_DIR", root / ".ksbb" / "infra")) / "infra.env"
    found = _from(read_env_file(env_file), "local")
    if found is None:
        raise RuntimeError(f"`deploy/local/infra up keycloak` succeeded but {env_file} does not describe a "
                           "Keycloak and Mailpit that answer")
    return found


@pytest.fixture(scope="session")
def identity_infra() -> Iterator[IdentityInfra]:
    """The run's Keycloak (realm ksbb) and Mailpit; fails loudly when they cannot be had."""
    try:
        found = resolve_identity_infra()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield found


class Mailpit:
    """Mailpit's HTTP API: the messages the SMTP sink received."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def messages_to(self, address: str) -> list[dict[str, Any]]:
        """Summaries of the messages to an address, newest first."""
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.url}/api/v1/search", params={"query": f'to:"{address}"'})
            response.raise_for_status()
            return list(response.json().get("messages") or [])

    async def message(self, message_id: str) -> dict[str, Any]:
        """One message with its text and HTML bodies."""
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.url}/api/v1/message/{message_id}")
            response.raise_for_status()
            return dict(response.json())

    async def wait_for(self, address: str, *, subject: str | None = None, within: float = 60) -> dict[str, Any]:
        """The newest message to `address` (whose subject contains `subject`), waiting for it to arrive."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for summary in await self.messages_to(address):
                if subject is None or subject.lower() in str(summary.get("Subject", "")).lower():
                    return await self.message(summary["ID"])
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no e-mail to {address}{f' about {subject!r}' if subject else ''} "
                                     f"reached Mailpit ({self.url}) within {within:.0f}s")
            await asyncio.sleep(0.3)

    @staticmethod
    def links(message: dict[str, Any]) -> list[str]:
        """Every http(s) link in a message's text body."""
        return [link.rstrip(").,>\"'") for link in re.findall(r"https?://[^\s<>\"]+", str(message.get("Text", "")))]


@pytest.fixture(scope="session")
def mailpit(identity_infra: IdentityInfra) -> Mailpit:
    """The run's Mailpit."""
    return Mailpit(identity_infra.mailpit_url)


def require_chromium() -> None:
    """Fail (never skip) when Debian's Chromium is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's Chromium (`apt-get install -y chromium`); "
                    "Playwright must not download its own browser.", pytrace=False)


class CodeCatcher:
    """Notes the browser's request to CALLBACK and keeps the authorisation code.

    Nothing listens at CALLBACK: Playwright does not route requests that follow a redirect, so the code is read
    from the request itself and the browser's failed navigation there is expected (see `goto`).
    """

    def __init__(self) -> None:
        self.code: str | None = None
        self.state: str | None = None
        self.error: str | None = None
        #: Set once the browser's request to CALLBACK has ended (failed: nothing listens; or answered).
        self.ended = asyncio.Event()

    async def install(self, page: Any) -> None:
        """Watch this page's requests (and answer direct navigations to CALLBACK with a tiny page)."""

        def note(request: Any) -> None:
            if request.url.startswith(CALLBACK):
                query = parse_qs(urlparse(request.url).query)
                self.code = (query.get("code") or [None])[0]
                self.state = (query.get("state") or [None])[0]
                self.error = (query.get("error") or [None])[0]

        async def answer(route: Any) -> None:
            await route.fulfill(status=200, content_type="text/html", body="<p>signed in</p>")

        def ended(request: Any) -> None:
            if request.url.startswith(CALLBACK):
                self.ended.set()

        page.on("request", note)
        page.on("requestfailed", ended)
        page.on("requestfinished", ended)
        await page.route(lambda url: url.startswith(CALLBACK), answer)

    async def wait(self, within: float = 30) -> str:
        """The code, once the browser was sent to CALLBACK."""
        deadline = asyncio.get_running_loop().time() + within
        while self.code is None and self.error is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the browser was not sent to {CALLBACK} within {within:.0f}s")
            await asyncio.sleep(0.1)
        assert self.code, f"no authorisation code: error {self.error!r}"
        return self.code


async def goto(page: Any, url: str, *, attempts: int = 3) -> None:
    """Navigate; a navigation that ends at CALLBACK (where nothing listens) is not an error.

    The previous sign-in's failed navigation to CALLBACK may still be committing its error page when the next
    navigation starts and interrupt it; that is not this navigation's outcome, so it is retried (`sign_in` also
    waits for that navigation to end, which makes it rare).
    """
    for attempt in range(1, attempts + 1):
        try:
            await page.goto(url)
            return
        except Exception as exc:
            message = str(exc)
            if "ERR_CONNECTION_REFUSED" in message:
                return
            # Interrupted by the stale error page, or by a navigation Chromium restarted to this same URL
            # (seen in CI): either way the page did not load what was asked, so ask again.
            if "interrupted by another navigation" in message and attempt < attempts:
                await page.wait_for_load_state()
                continue
            raise


async def login_in_browser(
    page: Any, client: OidcClient, email: str, password: str, *, register: bool = False
) -> tuple[str, str, CodeCatcher]:
    """Open the hosted sign-in (or sign-up) page with PKCE; returns (code_verifier, state, catcher) for the caller
    to fill the form (sign-up) or, for sign-in, after filling e-mail and password."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    catcher = CodeCatcher()
    await catcher.install(page)
    build = client.registration_url if register else client.authorization_url
    await goto(page, await build(CALLBACK, state=state, code_challenge=challenge, scope="openid"))
    if not register:
        await page.fill("#username", email)
        await page.fill("#password", password)
        await page.click("#kc-login")
    return verifier, state, catcher


async def sign_in(page: Any, client: OidcClient, email: str, password: str) -> TokenSet:
    """Authorisation code + PKCE through Keycloak's hosted sign-in page; the tokens of that person."""
    verifier, state, catcher = await login_in_browser(page, client, email, password)
    code = await catcher.wait()
    assert catcher.state == state, "the state came back changed"
    # Let the browser finish its navigation to CALLBACK (an error page), so the next navigation on this page
    # does not race with it; not waiting forever: the code is what this sign-in needed.
    await woken(catcher.ended, 10)
    with contextlib.suppress(Exception):
        await page.wait_for_load_state()
    return await client.exchange_code(code, CALLBACK, verifier)


def unique_email(label: str) -> str:
    """An address no other test (or earlier run against the same Keycloak) uses."""
    return f"{label}-{secrets.token_hex(5)}@ksbb.example"
