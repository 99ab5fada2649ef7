"""The publisher service starts on the real broker and database and serves its operational endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_kit.testing.plugin import running
from ksbb_publisher.bootstrap import create_app
from ksbb_publisher.settings import PublisherSettings

pytestmark = pytest.mark.integration


async def test_starts_and_serves_operational_endpoints(kit_env: dict[str, Any]) -> None:
    async with running(create_app(PublisherSettings(**kit_env))) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = (await client.get("/readyz")).json()
        assert ready["checks"] == {"mongodb": True, "kafka": True}
        metrics = await client.get("/metrics")
        assert "ksbb_http_requests_total" in metrics.text
        assert (await client.get("/openapi.json")).json()["info"]["title"].startswith("KSBB")
        assert (await client.get("/asyncapi.json")).status_code == 200
