"""The `make run` seed registers a webhook endpoint for a demo organisation through the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from ksbb_kit.clock import ManualClock
from ksbb_kit.demo import DemoContext
from ksbb_notifier.demo import seed

pytestmark = pytest.mark.integration


class InProcessDemo(DemoContext):
    """A demo context whose notifier client talks to the app under test."""

    app: Any = None

    def client(self, service: str, role: Any = None, **claims: Any) -> httpx.AsyncClient:
        """An authenticated client bound to the in-process app."""
        headers = {"authorization": f"Bearer {self.token(role, **claims)}"} if role else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://notifier", headers=headers
        )


async def test_seed_registers_an_endpoint_or_skips(infra: Any, dev_issuer: Any, h: Any, capsys: Any) -> None:
    settings = h.base_settings(infra, dev_issuer, h.new_namespace())
    async with h.start_notifier(settings, ManualClock(datetime.now(UTC))) as app:
        ctx = InProcessDemo(urls={"notifier": "http://notifier"}, issuer=dev_issuer)
        ctx.app = app.app
        await seed(ctx)
        assert "skipping" in capsys.readouterr().out

        ctx.state["registry"] = {"organisations": ["org_demo"], "recipients": []}
        await seed(ctx)
        out = capsys.readouterr().out
        endpoint_id = ctx.state["notifier"]["endpoint_id"]
        assert endpoint_id in out and "whsec_" in out
        assert ctx.state["notifier"]["secret"] not in out  # only the hint is printed
        stored = await app.db.endpoints.find_one({"_id": endpoint_id})
        assert stored["organisation_id"] == "org_demo" and stored["enabled"] is True
