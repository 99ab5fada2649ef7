"""The registry demo seed runs through the real API, spreads recipients over Jakarta and is re-runnable."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from ksbb_kit.auth import DevIssuer
from ksbb_kit.demo import DemoContext
from ksbb_registry.demo import seed

pytestmark = pytest.mark.integration


class InProcessDemo(DemoContext):
    """A demo context whose clients talk to the in-process app instead of a port."""

    app: Any = None

    def client(self, service: str, role: Any = None, **claims: Any) -> httpx.AsyncClient:
        """A client bound to the in-process app."""
        headers = {"authorization": f"Bearer {self.token(role, **claims)}"} if role else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://registry",
            headers=headers,
            timeout=30,
        )


async def test_seed_creates_organisations_recipients_and_needs_once(
    service_app: tuple[Any, httpx.AsyncClient],
    dev_issuer: DevIssuer,
) -> None:
    app, client = service_app
    ctx = InProcessDemo(urls={"registry": "http://registry"}, issuer=dev_issuer)
    ctx.app = app
    await seed(ctx, recipients_wanted=24)
    first = ctx.state["registry"]
    assert len(first["organisations"]) == 4 and len(first["recipients"]) == 24
    assert len({r["kelurahan_code"] for r in first["recipient_details"]}) == 24  # spread over kelurahan
    statuses = Counter(r["status"] for r in first["recipient_details"])
    assert statuses["active"] >= 12
    admin = {"authorization": f"Bearer {dev_issuer.token('admin')}"}
    for need in first["need_details"][:5]:
        stored = (await client.get(f"/v1/needs/{need['need_id']}", headers=admin)).json()
        assert stored["status"] == "open" and stored["recipient_id"] == need["recipient_id"]
    await seed(ctx, recipients_wanted=24)  # a second `make run` must not duplicate anything
    assert ctx.state["registry"]["recipients"] == first["recipients"]
    assert ctx.state["registry"]["needs"] == first["needs"]
    listed = (await client.get("/v1/recipients", headers=admin, params={"limit": 200})).json()["items"]
    assert len(listed) == 24
