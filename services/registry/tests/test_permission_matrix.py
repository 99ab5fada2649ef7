"""Permission matrix generated from the OpenAPI document: every route × every role → allowed or refused."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ksbb_kit.auth import DevIssuer

from .conftest import Caller, need_payload, organisation_payload, recipient_payload

pytestmark = pytest.mark.integration

ROLES = (
    "admin",
    "own_facilitator",
    "other_facilitator",
    "own_recipient",
    "other_recipient",
    "donor",
    "anonymous",
)
EVERYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})
OWN_STAFF = frozenset({"admin", "own_facilitator"})
ANY_STAFF = frozenset({"admin", "own_facilitator", "other_facilitator"})
OWN_ACTORS = frozenset({"admin", "own_facilitator", "own_recipient"})
SIGNED_IN_EXCEPT_DONOR = frozenset(
    {"admin", "own_facilitator", "other_facilitator", "own_recipient", "other_recipient"}
)

#: (method, OpenAPI path) → roles that get past authorisation (any other status than 401/403).
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("get", "/healthz"): EVERYONE,
    ("get", "/readyz"): EVERYONE,
    ("get", "/metrics"): EVERYONE,
    ("get", "/asyncapi.json"): EVERYONE,
    ("get", "/asyncapi"): EVERYONE,
    ("get", "/v1/areas"): EVERYONE,
    ("get", "/v1/areas/tree"): EVERYONE,
    ("get", "/v1/areas/{code}"): EVERYONE,
    ("get", "/v1/catalogue"): EVERYONE,
    ("post", "/v1/organisations"): ADMIN,
    ("get", "/v1/organisations"): ANY_STAFF,
    ("get", "/v1/organisations/{organisation_id}"): OWN_STAFF,
    ("patch", "/v1/organisations/{organisation_id}"): ADMIN,
    ("post", "/v1/organisations/{organisation_id}/suspend"): ADMIN,
    ("post", "/v1/organisations/{organisation_id}/reinstate"): ADMIN,
    ("post", "/v1/recipients"): OWN_STAFF,
    ("get", "/v1/recipients"): ANY_STAFF,
    ("get", "/v1/recipients/{recipient_id}"): OWN_ACTORS,
    ("patch", "/v1/recipients/{recipient_id}"): OWN_ACTORS,
    ("get", "/v1/recipients/{recipient_id}/audit"): OWN_STAFF,
    ("post", "/v1/recipients/{recipient_id}/verify"): OWN_STAFF,
    ("post", "/v1/recipients/{recipient_id}/activate"): OWN_STAFF,
    ("post", "/v1/recipients/{recipient_id}/suspend"): OWN_STAFF,
    ("post", "/v1/recipients/{recipient_id}/reinstate"): ADMIN,
    ("post", "/v1/recipients/{recipient_id}/archive"): ADMIN,
    ("get", "/v1/recipients/{recipient_id}/need-suggestions"): OWN_ACTORS,
    ("post", "/v1/recipients/{recipient_id}/needs"): OWN_ACTORS,
    ("get", "/v1/needs"): SIGNED_IN_EXCEPT_DONOR,
    ("get", "/v1/needs/{need_id}"): OWN_ACTORS,
    ("patch", "/v1/needs/{need_id}"): OWN_ACTORS,
    ("post", "/v1/needs/{need_id}/cancel"): OWN_ACTORS,
    ("post", "/v1/recipients/{recipient_id}/reports"): EVERYONE,
    ("get", "/v1/reports"): ANY_STAFF,
    ("post", "/v1/reports/{report_id}/resolve"): OWN_STAFF,
    ("post", "/v1/organisations/{organisation_id}/members"): ADMIN,
    ("get", "/v1/organisations/{organisation_id}/members"): OWN_STAFF,
    ("delete", "/v1/organisations/{organisation_id}/members/{account_id}"): ADMIN,
    ("post", "/v1/recipients/{recipient_id}/accounts"): frozenset({"own_facilitator"}),
    ("get", "/v1/recipients/{recipient_id}/accounts"): OWN_STAFF,
    ("delete", "/v1/recipients/{recipient_id}/accounts/{account_id}"): OWN_STAFF,
}
#: Routes that call the identity provider once authorisation passed: its outage (503) still proves that.
IDENTITY_ROUTES = {
    ("post", "/v1/organisations/{organisation_id}/members"),
    ("post", "/v1/recipients/{recipient_id}/accounts"),
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(service_app: tuple[Any, httpx.AsyncClient], dev_issuer: DevIssuer) -> dict[str, Any]:
    """Organisations A and B; in A an active recipient with a need and a report; in B a recipient."""
    app, client = service_app
    admin = Caller(client, dev_issuer.token("admin"))
    org_a = (await admin.post("/v1/organisations", json=organisation_payload("Lembaga A"))).json()[
        "organisation_id"
    ]
    org_b = (await admin.post("/v1/organisations", json=organisation_payload("Lembaga B"))).json()[
        "organisation_id"
    ]
    rid = (await admin.post("/v1/recipients", json=recipient_payload(org_a))).json()["recipient_id"]
    other_rid = (await admin.post("/v1/recipients", json=recipient_payload(org_b))).json()["recipient_id"]
    await admin.post(f"/v1/recipients/{rid}/verify", json={"reason": "ok"})
    await admin.post(f"/v1/recipients/{rid}/activate", json={})
    nid = (await admin.post(f"/v1/recipients/{rid}/needs", json=need_payload())).json()["need_id"]
    report = await client.post(f"/v1/recipients/{rid}/reports", json={"text": "Laporan untuk uji matriks"})
    tokens = {
        "admin": dev_issuer.token("admin"),
        "own_facilitator": dev_issuer.token("facilitator", org_id=org_a),
        "other_facilitator": dev_issuer.token("facilitator", org_id=org_b),
        "own_recipient": dev_issuer.token("recipient", recipient_id=rid),
        "other_recipient": dev_issuer.token("recipient", recipient_id=other_rid),
        "donor": dev_issuer.token("donor", subject="donor-1"),
        "anonymous": None,
    }
    return {
        "app": app,
        "client": client,
        "org": org_a,
        "recipient": rid,
        "need": nid,
        "report": report.json()["report_id"],
        "tokens": tokens,
    }


def invite_payload(role: str) -> dict[str, str]:
    """An invitation of a person nobody invited before (real accounts when Keycloak answers)."""
    return {"email": f"matriks-{role.replace('_', '-')}-{uuid.uuid4().hex[:8]}@ksbb.example", "first_name": "Uji"}


def body_for(method: str, path: str, world: dict[str, Any], role: str) -> dict[str, Any] | None:
    """A valid request body for a route (so refusals come from authorisation, not validation)."""
    if method in ("get", "delete"):
        return None
    bodies: dict[tuple[str, str], Any] = {
        ("post", "/v1/organisations"): lambda: organisation_payload(f"Lembaga {role}"),
        ("patch", "/v1/organisations/{organisation_id}"): lambda: {"area_codes": ["31.71", "31.72"]},
        ("post", "/v1/organisations/{organisation_id}/suspend"): lambda: {"reason": "uji"},
        ("post", "/v1/organisations/{organisation_id}/reinstate"): lambda: {"reason": "uji"},
        ("post", "/v1/recipients"): lambda: recipient_payload(world["org"]),
        ("patch", "/v1/recipients/{recipient_id}"): lambda: {
            "contact": {"name": "Ibu Ani", "phone": "081299990000"}
        },
        ("post", "/v1/recipients/{recipient_id}/needs"): lambda: need_payload(),
        ("patch", "/v1/needs/{need_id}"): lambda: {"priority": "low"},
        ("post", "/v1/needs/{need_id}/cancel"): lambda: {"reason": "uji"},
        ("post", "/v1/recipients/{recipient_id}/reports"): lambda: {"text": f"Laporan uji dari {role}"},
        ("post", "/v1/reports/{report_id}/resolve"): lambda: {"outcome": "dismissed", "note": "uji"},
        ("post", "/v1/organisations/{organisation_id}/members"): lambda: invite_payload(role),
        ("post", "/v1/recipients/{recipient_id}/accounts"): lambda: invite_payload(role),
    }
    if path.startswith("/v1/recipients/{recipient_id}/") and path.rsplit("/", 1)[1] in (
        "verify",
        "activate",
        "suspend",
        "reinstate",
        "archive",
    ):
        return {"reason": "uji"}
    if (method, path) not in bodies:
        raise AssertionError(f"no request body defined for {method.upper()} {path}")
    return bodies[(method, path)]()


async def test_every_route_is_in_the_matrix(world: dict[str, Any]) -> None:
    routes = {(m, p) for p, ops in world["app"].openapi()["paths"].items() for m in ops}
    assert routes - set(MATRIX) == set(), "routes missing from the permission matrix"
    assert set(MATRIX) - routes == set(), "matrix names routes that do not exist"


async def test_each_role_gets_exactly_its_permissions(world: dict[str, Any]) -> None:
    paths = world["app"].openapi()["paths"]
    values = {
        "organisation_id": world["org"],
        "recipient_id": world["recipient"],
        "need_id": world["need"],
        "report_id": world["report"],
        "code": "31.71",
        "account_id": "kc-account-not-invited",
    }
    failures = []
    # Refused roles first, so state-changing calls by allowed roles cannot mask a refusal.
    for path, operations in paths.items():
        for method in operations:
            allowed = MATRIX[(method, path)]
            url = path.format(**values)
            for role in sorted(ROLES, key=lambda r: r in allowed):
                caller = Caller(world["client"], world["tokens"][role])
                body = body_for(method, path, world, role)
                response = await caller.request(
                    method.upper(), url, **({"json": body} if body is not None else {})
                )
                if role in allowed:
                    provider_down = (method, path) in IDENTITY_ROUTES and response.status_code == 503 and (
                        response.json().get("code") == "identity_provider_unavailable"
                    )
                    ok = response.status_code not in (401, 403) and (response.status_code < 500 or provider_down)
                else:
                    ok = response.status_code == (401 if role == "anonymous" else 403)
                if not ok:
                    failures.append(
                        f"{method.upper()} {path} as {role}: {response.status_code} {response.text[:120]}"
                    )
    assert failures == []
