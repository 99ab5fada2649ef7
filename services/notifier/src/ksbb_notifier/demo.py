"""Demo data for `make run`: a webhook endpoint for one demo organisation."""

from __future__ import annotations

import os
from typing import Any

from ksbb_kit.demo import DemoContext

#: Where a local receiver could listen; plain http works only if the notifier allow-lists the host.
DEFAULT_DEMO_URL = "http://127.0.0.1:8199/ksbb-webhooks"


def _first_organisation(registry: Any) -> str | None:
    """The first organisation id found in the registry seed's state, whatever shape it has."""
    if isinstance(registry, dict):
        for key in ("organisation_id", "org_id"):
            if isinstance(registry.get(key), str):
                return str(registry[key])
        for key in ("organisations", "organisation_ids", "orgs"):
            found = _first_organisation(registry.get(key))
            if found:
                return found
        if isinstance(registry.get("id"), str) and str(registry["id"]).startswith("org"):
            return str(registry["id"])
    if isinstance(registry, list | tuple):
        for item in registry:
            found = item if isinstance(item, str) else _first_organisation(item)
            if found:
                return found
    return None


async def seed(ctx: DemoContext) -> None:
    """Register a webhook endpoint for a demo organisation and print its secret hint."""
    organisation_id = _first_organisation(ctx.state.get("registry"))
    if organisation_id is None:
        print("notifier demo: no demo organisation from the registry seed; skipping the webhook endpoint")
        return
    url = os.environ.get("KSBB_DEMO_WEBHOOK_URL", DEFAULT_DEMO_URL)
    async with ctx.client("notifier", "facilitator", org_id=organisation_id) as client:
        response = await client.post(
            "/v1/webhooks/endpoints",
            json={
                "url": url,
                "description": "Demo receiver (make run)",
                "event_types": ["ksbb.pledge.*", "ksbb.need.*"],
            },
        )
        if response.status_code == 422:
            print(
                f"notifier demo: {url} refused ({response.json().get('message')}); allow the host with "
                "KSBB_NOTIFIER_INSECURE_HTTP_HOSTS='[\"127.0.0.1\"]' and KSBB_NOTIFIER_SSRF_ALLOW_HOSTS, "
                "or set KSBB_DEMO_WEBHOOK_URL to an https receiver"
            )
            return
        response.raise_for_status()
        endpoint = response.json()
    # The full secret stays in the seed state (for a demo receiver), never in the console.
    ctx.state["notifier"] = {
        "endpoint_id": endpoint["id"],
        "organisation_id": organisation_id,
        "secret": endpoint["secret"],
    }
    print(
        f"notifier demo: webhook endpoint {endpoint['id']} for {organisation_id} → {url}; "
        f"signing secret {endpoint['secret_hint']} (start a receiver there to watch deliveries)"
    )
