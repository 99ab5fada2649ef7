"""Tokens from the real Keycloak: `ksbb token` (client credentials, device login, --dev), key rotation with a new
kid, and the onboarding client's narrow rights."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from ksbb_kit.auth import Role, TokenVerifier
from ksbb_kit.errors import ApiError
from ksbb_kit.testing.identity import IdentityInfra
from ksbb_kit.testing.infra import repo_root

pytestmark = pytest.mark.e2e

DEMO_USERS = repo_root() / "deploy" / "identity" / "ksbb-users-0.json"
REALM = json.loads((repo_root() / "deploy" / "identity" / "ksbb-realm.json").read_text())
CLI_ACCOUNT = next(u for u in REALM["users"] if u.get("serviceAccountClientId") == "ksbb-cli")


def ksbb() -> str:
    """The installed `ksbb` command."""
    found = shutil.which("ksbb") or str(Path(sys.executable).with_name("ksbb"))
    assert Path(found).exists(), "the ksbb entry point is installed in the workspace environment"
    return found


def cli_env(infra: IdentityInfra, **extra: str) -> dict[str, str]:
    """An environment naming only this run's identity provider (no infra env file from elsewhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSBB_")}
    return {**env, "KSBB_OIDC_ISSUER": infra.issuer, "KSBB_OIDC_CLI_SECRET": infra.cli_secret,
            "KSBB_INFRA_DIR": "/nonexistent", **extra}


async def run_cli(infra: IdentityInfra, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `ksbb …` as a person would (in a thread: the test's event loop keeps running)."""
    return await asyncio.to_thread(subprocess.run, [ksbb(), *args], env=cli_env(infra), capture_output=True,
                                   text=True, timeout=60)


def kid(token: str) -> str:
    """The key id a token names."""
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def test_ksbb_token_gets_a_service_account_token_and_keeps_dev_tokens_behind_a_flag(
    identity_infra: IdentityInfra, tmp_path: Path,
) -> None:
    verifier = TokenVerifier(issuer=identity_infra.issuer, audience="ksbb")
    done = await run_cli(identity_infra, "token")
    assert done.returncode == 0, done.stderr
    principal = await verifier.verify(done.stdout.strip())
    assert (principal.role, principal.client_id, principal.subject) == (Role.ADMIN, "ksbb-cli", CLI_ACCOUNT["id"])

    wrong = await run_cli(identity_infra, "token", "--client-secret", "not-the-secret")
    assert wrong.returncode == 1 and "refused" in wrong.stderr and not wrong.stdout.strip()

    undecided = await run_cli(identity_infra, "token", "--role", "admin")
    assert undecided.returncode == 2 and "--dev" in undecided.stderr

    dev = await run_cli(identity_infra, "token", "--dev", "--role", "facilitator", "--org", "org_dev",
                        "--dir", str(tmp_path))
    assert dev.returncode == 0, dev.stderr
    assert "KSBB_DEV_ISSUER_ENABLED" in dev.stderr
    with pytest.raises(ApiError) as refused:
        await verifier.verify(dev.stdout.strip())
    assert refused.value.status == 401, "a service following Keycloak refuses development tokens"
    local = TokenVerifier(str(tmp_path / "jwks.json"), issuer="ksbb-dev-issuer", audience="ksbb")
    assert (await local.verify(dev.stdout.strip())).org_id == "org_dev"


async def test_device_login_gives_a_person_their_own_token(
    identity_infra: IdentityInfra, browser_page: Any,
) -> None:
    donor = next(u for u in json.loads(DEMO_USERS.read_text())["users"] if "donor" in u["realmRoles"])
    process = await asyncio.create_subprocess_exec(
        ksbb(), "token", "--device", env=cli_env(identity_infra),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=60)).decode()
        match = re.search(r"(https?://\S+)", line)
        assert match and "Buka" in line, f"the CLI tells the person where to go: {line!r}"
        page = browser_page
        await page.goto(match.group(1))
        await page.fill("#username", donor["email"])
        await page.fill("#password", donor["credentials"][0]["value"])
        await page.click("#kc-login")
        consent = page.locator("#kc-login, [name=accept]")
        await page.wait_for_load_state()
        if await consent.count():
            await consent.first.click()
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    principal = await TokenVerifier(issuer=identity_infra.issuer, audience="ksbb").verify(stdout.decode().strip())
    assert (principal.role, principal.subject, principal.email) == (Role.DONOR, donor["id"], donor["email"])


async def test_a_new_signing_key_with_a_new_kid_is_fetched_once_and_accepted(identity_infra: IdentityInfra) -> None:
    urls: list[str] = []

    async def record(request: httpx.Request) -> None:
        urls.append(str(request.url))

    async with httpx.AsyncClient(timeout=10, event_hooks={"request": [record]}) as http:
        verifier = TokenVerifier(issuer=identity_infra.issuer, audience="ksbb", http=http, min_refetch_seconds=0)

        async def cli_token() -> str:
            response = await http.post(f"{identity_infra.issuer}/protocol/openid-connect/token", data={
                "grant_type": "client_credentials", "client_id": "ksbb-cli", "client_secret": identity_infra.cli_secret,
            })
            response.raise_for_status()
            return str(response.json()["access_token"])

        def jwks_fetches() -> int:
            return sum(1 for url in urls if url.endswith("/protocol/openid-connect/certs"))

        before = await cli_token()
        assert (await verifier.verify(before)).role is Role.ADMIN
        assert jwks_fetches() == 1

        admin = await master_admin_token(http, identity_infra)
        headers = {"Authorization": f"Bearer {admin}"}
        realm_id = (await http.get(f"{identity_infra.keycloak_url}/admin/realms/ksbb", headers=headers)).json()["id"]
        created = await http.post(f"{identity_infra.keycloak_url}/admin/realms/ksbb/components", headers=headers, json={
            "name": f"rotation-test-{os.urandom(3).hex()}", "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider", "parentId": realm_id,
            "config": {"priority": ["10000"], "enabled": ["true"], "active": ["true"], "algorithm": ["RS256"],
                       "keySize": ["2048"]},
        })
        assert created.status_code == 201, created.text
        component = created.headers["location"].rstrip("/").rpartition("/")[2]
        try:
            after = await cli_token()
            assert kid(after) != kid(before), "Keycloak signs with the new, higher-priority key"
            assert (await verifier.verify(after)).role is Role.ADMIN, "the unknown kid made the verifier look again"
            assert jwks_fetches() == 2
            assert (await verifier.verify(before)).role is Role.ADMIN, "the older key is still published"
            assert (await verifier.verify(await cli_token())).role is Role.ADMIN
            assert jwks_fetches() == 2, "known keys are served from the cache"
        finally:
            await http.delete(f"{identity_infra.keycloak_url}/admin/realms/ksbb/components/{component}",
                              headers=headers)


async def test_the_onboarding_client_manages_users_and_nothing_else(identity_infra: IdentityInfra) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{identity_infra.issuer}/protocol/openid-connect/token", data={
            "grant_type": "client_credentials", "client_id": "ksbb-registry-admin",
            "client_secret": identity_infra.admin_client_secret,
        })
        token = response.json()["access_token"]
        with pytest.raises(ApiError) as refused:
            await TokenVerifier(issuer=identity_infra.issuer, audience="ksbb").verify(token)
        assert refused.value.status == 401, "its tokens are not for the services (no ksbb audience)"
        headers = {"Authorization": f"Bearer {token}"}
        admin = f"{identity_infra.keycloak_url}/admin/realms/ksbb"
        assert (await http.get(f"{admin}/users", params={"max": 1}, headers=headers)).status_code == 200
        for forbidden in ("/clients", "/components", "/identity-provider/instances", "/authentication/flows"):
            assert (await http.get(admin + forbidden, headers=headers)).status_code == 403, forbidden
        assert (await http.get(f"{identity_infra.keycloak_url}/admin/realms/master/users",
                               headers=headers)).status_code in (401, 403)


async def master_admin_token(http: httpx.AsyncClient, infra: IdentityInfra) -> str:
    """A token of the development-only bootstrap administrator (master realm)."""
    response = await http.post(f"{infra.keycloak_url}/realms/master/protocol/openid-connect/token", data={
        "grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": infra.admin_password,
    })
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
