"""Permission matrix generated from the OpenAPI document: every /v1 route × every role, own and other."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROLES = ("admin", "fac_own", "fac_other", "rcp_own", "rcp_other", "donor_own", "donor_other", "anonymous")
DONORS = {"donor_own", "donor_other"}
PLEDGE_SEERS = {"admin", "fac_own", "rcp_own"}
PUBLIC = set(ROLES)

#: Which roles may call each route (anything else: 403, or 401 without a token). A route that is
#: missing here fails the test, so every new route must be given its permissions.
MATRIX: dict[tuple[str, str], set[str]] = {
    ("PUT", "/v1/donors/me"): DONORS,
    ("GET", "/v1/donors/me"): DONORS,
    ("POST", "/v1/pledges"): DONORS,
    ("GET", "/v1/pledges"): {"admin"} | DONORS,
    ("GET", "/v1/pledges/{pledge_id}"): PLEDGE_SEERS | {"donor_own"},
    ("GET", "/v1/pledges/{pledge_id}/recipient-contact"): {"donor_own"},
    ("POST", "/v1/pledges/{pledge_id}/confirm"): PLEDGE_SEERS,
    # The matrix pledge goes through a distribution partner, so its facilitator may mark it dispatched.
    ("POST", "/v1/pledges/{pledge_id}/dispatch"): {"admin", "fac_own", "donor_own"},
    ("POST", "/v1/pledges/{pledge_id}/deliver"): PLEDGE_SEERS,
    ("POST", "/v1/pledges/{pledge_id}/cancel"): {"admin", "donor_own"},
    ("POST", "/v1/pledges/{pledge_id}/reject"): PLEDGE_SEERS,
    ("GET", "/v1/needs/{need_id}/ledger"): PUBLIC,
    ("GET", "/v1/needs/{need_id}/pledges"): PLEDGE_SEERS,
    ("GET", "/v1/recipients/{recipient_id}/pledges"): PLEDGE_SEERS,
    ("POST", "/v1/offers"): DONORS,
    ("GET", "/v1/offers"): {"admin"} | DONORS,
    ("GET", "/v1/offers/{offer_id}"): {"admin", "donor_own"},
    ("POST", "/v1/offers/{offer_id}/accept"): {"donor_own"},
    ("POST", "/v1/offers/{offer_id}/decline"): {"donor_own"},
}


def headers_for(service: Any, role: str) -> dict[str, str]:
    claims: dict[str, dict[str, Any]] = {
        "admin": {},
        "fac_own": {"org_id": "org_perm"},
        "fac_other": {"org_id": "org_else"},
        "rcp_own": {"recipient_id": "rcp_perm"},
        "rcp_other": {"recipient_id": "rcp_else"},
        "donor_own": {"subject": "donor-perm"},
        "donor_other": {"subject": "donor-else"},
    }
    if role == "anonymous":
        return {}
    return service.auth(role.split("_")[0].replace("fac", "facilitator").replace("rcp", "recipient"), **claims[role])


async def test_every_route_has_its_permissions_enforced(service: Any) -> None:
    routes = {
        (method.upper(), path)
        for path, item in service.app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in item
    }
    assert routes == set(MATRIX), (
        f"routes without a matrix entry: {routes - set(MATRIX)}; stale: {set(MATRIX) - routes}"
    )

    need_id = await service.open_need("ned_perm", quantity=1000, recipient_id="rcp_perm", organisation_id="org_perm")
    planned = (service.clock.now().date() + timedelta(days=2)).isoformat()
    own = service.auth("donor", subject="donor-perm")
    pledge = await service.client.post(
        "/v1/pledges",
        headers=own,
        json={"need_id": need_id, "quantity": 1, "planned_date": planned, "mode": "distribution_partner"},
    )
    offer = await service.client.post(
        "/v1/offers", headers=own, json={"item": "sembako", "quantity": 2, "available_until": planned}
    )
    ids = {
        "pledge_id": pledge.json()["pledge_id"],
        "need_id": need_id,
        "recipient_id": "rcp_perm",
        "offer_id": offer.json()["offer_id"],
    }
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("PUT", "/v1/donors/me"): {"kind": "person", "display_name": "Budi"},
        ("POST", "/v1/pledges"): {"need_id": need_id, "quantity": 1, "planned_date": planned},
        ("POST", "/v1/pledges/{pledge_id}/deliver"): {"received_quantity": 1},
        ("POST", "/v1/pledges/{pledge_id}/reject"): {"reason": "tidak sesuai"},
        ("POST", "/v1/offers"): {"item": "sembako", "quantity": 1, "available_until": planned},
    }
    failures = []
    for (method, template), allowed in sorted(MATRIX.items()):
        url = template.format(**ids)
        # Denied roles first, so state changes made by allowed ones cannot mask a missing check.
        for role in sorted(ROLES, key=lambda r: r in allowed):
            response = await service.client.request(
                method, url, headers=headers_for(service, role), json=bodies.get((method, template))
            )
            if role in allowed:
                ok = response.status_code not in (401, 403, 422)
            else:
                ok = response.status_code == (401 if role == "anonymous" else 403)
            if not ok:
                failures.append(f"{method} {template} as {role}: {response.status_code} {response.text[:120]}")
    assert not failures, "\n".join(failures)
