"""Permission matrix: every /v1 route in the OpenAPI document × every role, own and other organisation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ksbb_kit.clock import ManualClock

pytestmark = pytest.mark.integration

ROLES = ("admin", "own_facilitator", "other_facilitator", "recipient", "donor", "anonymous")
E = "/v1/webhooks/endpoints/{endpoint_id}"


def expect(success: int, other: int) -> dict[str, int]:
    """Statuses per role: staff of the owning organisation and admins succeed; others are refused."""
    return {
        "admin": success,
        "own_facilitator": success,
        "other_facilitator": other,
        "recipient": 403,
        "donor": 403,
        "anonymous": 401,
    }


#: (method, path) → expected status per role, for an endpoint owned by the "own" organisation.
MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/v1/webhooks/endpoints"): expect(201, 201),  # the other facilitator creates one for its own org
    ("GET", "/v1/webhooks/endpoints"): expect(200, 200),  # …and lists only its own (asserted below)
    ("GET", E): expect(200, 404),
    ("PATCH", E): expect(200, 404),
    ("DELETE", E): expect(204, 404),
    ("POST", E + "/rotate-secret"): expect(200, 404),
    ("POST", E + "/test"): expect(202, 404),
    ("GET", E + "/deliveries"): expect(200, 404),
    ("GET", E + "/deliveries/{delivery_id}"): expect(200, 404),
    ("POST", E + "/deliveries/{delivery_id}/redeliver"): expect(202, 404),
    ("POST", E + "/recover"): expect(202, 404),
}

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/webhooks/endpoints"): {"url": "http://127.0.0.1:9/hook"},
    ("PATCH", E): {"description": "Sistem informasi LSM"},
    ("POST", E + "/recover"): {"since": "2020-04-29T00:00:00+07:00"},
}


def headers_for(role: str, issuer: Any) -> dict[str, str]:
    """Authorization for one role of the matrix."""
    if role == "anonymous":
        return {}
    token = {
        "admin": lambda: issuer.token("admin"),
        "own_facilitator": lambda: issuer.token("facilitator", org_id="org_own"),
        "other_facilitator": lambda: issuer.token("facilitator", org_id="org_other"),
        "recipient": lambda: issuer.token("recipient", recipient_id="rcp_x"),
        "donor": lambda: issuer.token("donor", subject="donor-1"),
    }[role]()
    return {"authorization": f"Bearer {token}"}


async def test_every_route_and_role(infra: Any, dev_issuer: Any, h: Any) -> None:
    settings = h.base_settings(infra, dev_issuer, h.new_namespace())
    async with h.start_notifier(settings, ManualClock(datetime.now(UTC))) as app:
        spec = (await app.client.get("/openapi.json")).json()
        routes = {
            (method.upper(), path) for path, ops in spec["paths"].items() if path.startswith("/v1/") for method in ops
        }
        assert routes == set(MATRIX), f"routes missing from the matrix: {routes ^ set(MATRIX)}"
        admin = headers_for("admin", dev_issuer)
        failures = []
        for (method, path), expected in sorted(MATRIX.items()):
            for role in ROLES:
                created = await app.client.post(
                    "/v1/webhooks/endpoints",
                    headers=admin,
                    json={"url": "http://127.0.0.1:9/hook", "organisation_id": "org_own"},
                )
                endpoint_id = created.json()["id"]
                sent = await app.client.post(f"/v1/webhooks/endpoints/{endpoint_id}/test", headers=admin)
                url = path.format(endpoint_id=endpoint_id, delivery_id=sent.json()["delivery_id"])
                response = await app.client.request(
                    method, url, headers=headers_for(role, dev_issuer), json=BODIES.get((method, path))
                )
                if response.status_code != expected[role]:
                    failures.append(f"{method} {path} as {role}: {response.status_code} != {expected[role]}")
        assert not failures, "\n".join(failures)

        own = (
            await app.client.get("/v1/webhooks/endpoints", headers=headers_for("own_facilitator", dev_issuer))
        ).json()
        other = (
            await app.client.get("/v1/webhooks/endpoints", headers=headers_for("other_facilitator", dev_issuer))
        ).json()
        assert own["items"] and {e["organisation_id"] for e in own["items"]} == {"org_own"}
        assert other["items"] and {e["organisation_id"] for e in other["items"]} == {"org_other"}
        assert all("secret" not in e for e in own["items"])
        forged = await app.client.post(
            "/v1/webhooks/endpoints",
            headers=headers_for("other_facilitator", dev_issuer),
            json={"url": "http://127.0.0.1:9/x", "organisation_id": "org_own"},
        )
        assert forged.status_code == 403 and forged.json()["field"] == "organisation_id"
