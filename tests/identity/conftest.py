"""Fixtures of the identity tests: a real OIDC test server (mock-oauth2-server), Keycloak, Mailpit, Chromium."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from ksbb_kit.identity import KeycloakAdmin
from ksbb_kit.oidc import OidcClient
from ksbb_kit.testing import identity as identity_support
from ksbb_kit.testing.identity import CHROMIUM, CHROMIUM_ARGS, IdentityInfra, Mailpit, require_chromium

HERE = Path(__file__).resolve().parent
POM = HERE / "mock_oauth2" / "pom.xml"
MAIN_CLASS = "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt"

# The run's Keycloak and Mailpit (started once per run when the environment has none).
identity_infra = identity_support.identity_infra
mailpit = identity_support.mailpit


def _cache_dir() -> Path:
    configured = os.environ.get("KSBB_INFRA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "ksbb-infra"


def mock_oauth2_classpath() -> str:
    """The mock-oauth2-server jars, fetched once with Maven into the download cache (like deploy/local/infra)."""
    key = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    target = _cache_dir() / f"mock-oauth2-{key}"
    if not (target / ".complete").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.parent / ".mock-oauth2.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (target / ".complete").exists():
                if shutil.which("mvn") is None or shutil.which("java") is None:
                    pytest.fail("the OIDC test server needs Java 17+ and Maven "
                                "(apt-get install openjdk-17-jdk-headless maven)", pytrace=False)
                result = subprocess.run(
                    ["mvn", "-B", "-q", "-Dstyle.color=never", "-f", str(POM), "dependency:copy-dependencies",
                     f"-DoutputDirectory={target / 'lib'}"], capture_output=True, text=True, timeout=600,
                )
                if result.returncode != 0:
                    pytest.fail(f"Maven could not fetch mock-oauth2-server:\n{result.stdout[-3000:]}", pytrace=False)
                (target / ".complete").touch()
    return str(target / "lib" / "*")


def free_port() -> int:
    """A localhost TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MockOAuth2:
    """A running mock-oauth2-server; `issuer(id)` is an issuer URL, `token(...)` mints through its token endpoint."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """The server's address."""
        return f"http://127.0.0.1:{self.port}"

    def issuer(self, issuer_id: str = "ksbb") -> str:
        """The issuer URL of one of the server's issuers."""
        return f"{self.base}/{issuer_id}"

    async def token(self, client_id: str, issuer_id: str = "ksbb") -> str:
        """An access token minted for a client id (the config's request mappings choose its claims)."""
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(f"{self.issuer(issuer_id)}/token", data={
                "grant_type": "client_credentials", "client_id": client_id, "client_secret": "unused",
                "scope": "ksbb",
            })
            response.raise_for_status()
            return str(response.json()["access_token"])

    def stop(self) -> None:
        """Stop the server (TERM, then KILL)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def mock_oauth2_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start mock-oauth2-server processes with a given JSON config (and port); all stopped at the end."""
    classpath = mock_oauth2_classpath()
    started: list[MockOAuth2] = []
    logs = tmp_path_factory.mktemp("mock-oauth2")

    def start(config: dict[str, Any], port: int | None = None) -> MockOAuth2:
        port = port or free_port()
        log = logs / f"server-{port}-{len(started)}.log"
        env = {**os.environ, "SERVER_PORT": str(port), "SERVER_HOSTNAME": "127.0.0.1",
               "JSON_CONFIG": json.dumps(config)}
        process = subprocess.Popen(
            ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", classpath, MAIN_CLASS],
            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )
        server = MockOAuth2(port, process, log, config)
        started.append(server)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"mock-oauth2-server exited:\n{log.read_text()[:3000]}", pytrace=False)
            with contextlib.suppress(Exception):
                with urllib.request.urlopen(f"{server.issuer()}/.well-known/openid-configuration", timeout=2):
                    return server
            if time.monotonic() > deadline:
                pytest.fail(f"mock-oauth2-server not answering after 60s:\n{log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.1)

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
async def keycloak_admin(identity_infra: IdentityInfra) -> AsyncIterator[KeycloakAdmin]:
    """The onboarding client of the realm (service account with manage-users/view-users/query-users only)."""
    async with KeycloakAdmin(identity_infra.issuer, "ksbb-registry-admin", identity_infra.admin_client_secret) as admin:
        yield admin


@pytest.fixture(scope="session")
async def web_client(identity_infra: IdentityInfra) -> AsyncIterator[OidcClient]:
    """The public browser client (authorisation code + PKCE S256)."""
    async with OidcClient(identity_infra.issuer, "ksbb-web") as client:
        yield client


@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    """A fresh Chromium page (own cookies) per test."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(locale="id-ID")
            yield await context.new_page()
        finally:
            await browser.close()


__all__ = ["Mailpit", "MockOAuth2"]
