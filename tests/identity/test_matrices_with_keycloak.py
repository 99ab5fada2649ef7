"""The services' permission matrices with Keycloak-issued tokens: every service that checks roles runs, configured
as in production (KSBB_OIDC_ISSUER only, development issuer off), and answers a representative row of its matrix
per role with the real tokens of the realm's demo accounts (one per role, fixed ids).

The rows are taken from the matrices in services/*/tests (routes whose answer depends on the role alone, not on
owning the resource); each row's route must exist in the service's OpenAPI document, so a renamed route fails here.
The publisher has no matrix: its routes are public.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ksbb_kit.auth import DevIssuer, Role, TokenVerifier
from ksbb_kit.oidc import OidcClient
from ksbb_kit.testing.identity import CHROMIUM, CHROMIUM_ARGS, IdentityInfra, require_chromium, sign_in
from ksbb_kit.testing.infra import Infra, repo_root
from ksbb_kit.testing.service import running

pytestmark = pytest.mark.e2e

DEMO_USERS = repo_root() / "deploy" / "identity" / "ksbb-users-0.json"  # development only
ROLES = ("admin", "facilitator", "recipient", "donor", "anonymous")
SIGNED_IN = frozenset({"admin", "facilitator", "recipient", "donor"})

#: service -> (method, OpenAPI path, concrete URL, body, roles that get past authorisation).
Row = tuple[str, str, str, dict[str, Any] | None, frozenset[str]]
ROWS: dict[str, list[Row]] = {
    "registry": [  # services/registry/tests/test_permission_matrix.py
        ("get", "/v1/organisations", "/v1/organisations", None, frozenset({"admin", "facilitator"})),
        ("get", "/v1/recipients", "/v1/recipients", None, frozenset({"admin", "facilitator"})),
        ("get", "/v1/needs", "/v1/needs", None, frozenset({"admin", "facilitator", "recipient"})),
        ("get", "/v1/reports", "/v1/reports", None, frozenset({"admin", "facilitator"})),
        ("patch", "/v1/organisations/{organisation_id}", "/v1/organisations/org_tidak_ada",
         {"area_codes": ["31.71"]}, frozenset({"admin"})),
        ("get", "/v1/areas", "/v1/areas", None, frozenset(ROLES)),
    ],
    "pledges": [  # services/pledges/tests/test_permissions.py
        ("get", "/v1/donors/me", "/v1/donors/me", None, frozenset({"donor"})),
        ("get", "/v1/pledges", "/v1/pledges", None, frozenset({"admin", "donor"})),
        ("get", "/v1/offers", "/v1/offers", None, frozenset({"admin", "donor"})),
    ],
    "notifier": [  # services/notifier/tests/test_permissions.py
        ("get", "/v1/webhooks/endpoints", "/v1/webhooks/endpoints", None, frozenset({"admin", "facilitator"})),
    ],
}


def _settings_class(service: str) -> Any:
    module = __import__(f"ksbb_{service}.settings", fromlist=["*"])
    return next(value for name, value in vars(module).items() if name.endswith("Settings") and name != "KitSettings")


def _create_app(service: str) -> Callable[..., Any]:
    return __import__(f"ksbb_{service}.bootstrap", fromlist=["create_app"]).create_app


@contextlib.asynccontextmanager
async def following_keycloak(service: str, infra: Infra, identity: IdentityInfra, namespace: str) -> AsyncIterator[
        tuple[Any, httpx.AsyncClient]]:
    """The service configured as in production: only the configured issuer's tokens."""
    settings = _settings_class(service)(
        env="test", kafka_bootstrap=infra.kafka_bootstrap, mongodb_url=infra.mongodb_url,
        topic_prefix=f"{namespace}{service}.", topic_partitions=2, outbox_sweep_seconds=0.5,
        oidc_issuer=identity.issuer, dev_issuer_enabled=False,
    )
    app = _create_app(service)(settings)
    async with running(app) as client:
        yield app, client


@pytest.fixture(scope="module")
async def demo_tokens(identity_infra: IdentityInfra) -> dict[str, str]:
    """Access tokens of the four demo accounts, signed in through Keycloak's hosted page (PKCE) in Chromium."""
    require_chromium()
    from playwright.async_api import async_playwright

    users = json.loads(DEMO_USERS.read_text())["users"]
    tokens: dict[str, str] = {}
    verifier = TokenVerifier(issuer=identity_infra.issuer, audience="ksbb")
    async with OidcClient(identity_infra.issuer, "ksbb-web") as web, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            for user in users:
                role = user["realmRoles"][0]
                password = next(c["value"] for c in user["credentials"] if c["type"] == "password")
                context = await browser.new_context(locale="id-ID")
                signed = await sign_in(await context.new_page(), web, user["username"], password)
                await context.close()
                principal = await verifier.verify(signed.access_token)
                assert (principal.role, principal.subject) == (Role(role), user["id"]), "demo account's role/id"
                tokens[role] = signed.access_token
        finally:
            await browser.close()
    assert set(tokens) == SIGNED_IN
    return tokens


@pytest.mark.parametrize("service", sorted(ROWS))
async def test_the_permission_matrix_holds_with_keycloak_tokens(
    service: str, demo_tokens: dict[str, str], identity_infra: IdentityInfra, infra: Infra, namespace: str,
) -> None:
    async with following_keycloak(service, infra, identity_infra, namespace) as (app, client):
        paths = app.openapi()["paths"]
        failures = []
        for method, path, url, body, allowed in ROWS[service]:
            assert method in paths.get(path, {}), f"{method.upper()} {path} is not a route of {service} any more"
            for role in sorted(ROLES, key=lambda r: r in allowed):  # refusals first: allowed writes come last
                headers = {"Authorization": f"Bearer {demo_tokens[role]}"} if role in demo_tokens else {}
                response = await client.request(method.upper(), url, headers=headers, json=body)
                if role in allowed:
                    ok = response.status_code not in (401, 403) and response.status_code < 500
                else:
                    ok = response.status_code == (401 if role == "anonymous" else 403)
                if not ok:
                    failures.append(f"{method.upper()} {path} as {role}: {response.status_code} {response.text[:160]}")
        dev = DevIssuer(Path(tempfile.mkdtemp(prefix="ksbb-dev-"))).token(Role.ADMIN, subject="someone")
        method, _, url, body, _ = ROWS[service][0]
        refused = await client.request(method.upper(), url, headers={"Authorization": f"Bearer {dev}"})
        assert refused.status_code == 401, "a development-issuer token is refused when only Keycloak is trusted"
        assert failures == []
