"""Every service starts from its composition root on the real broker and database and serves its operations."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from ksbb_contracts.topics import topics_consumed_by
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.service import start_service

pytestmark = pytest.mark.integration
SERVICES = ("registry", "pledges", "notifier", "publisher")


def composition_root(service: str) -> tuple[Callable[..., FastAPI], type[KitSettings]]:
    """The service's `bootstrap.create_app` and its settings class (the one named after the service)."""
    create_app = importlib.import_module(f"ksbb_{service}.bootstrap").create_app
    settings_module = importlib.import_module(f"ksbb_{service}.settings")
    classes = [
        value for value in vars(settings_module).values()
        if isinstance(value, type) and issubclass(value, KitSettings) and value.service_name == service
    ]
    assert len(classes) == 1, f"ksbb_{service}.settings defines one settings class, found {classes}"
    return create_app, classes[0]


@pytest.mark.parametrize("service", SERVICES)
async def test_service_starts_and_serves_its_operational_endpoints(service: str, kit_env: dict[str, Any]) -> None:
    create_app, settings_class = composition_root(service)
    settings = settings_class(**kit_env)
    async with start_service(create_app, settings) as running:
        client = running.client
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {
            "status": "ready", "checks": {"mongodb": True, "kafka": True}
        }
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200 and "ksbb_http_requests_total" in metrics.text
        openapi = (await client.get("/openapi.json")).json()
        assert openapi["info"]["title"].startswith("KSBB")
        assert {"/healthz", "/readyz", "/metrics"} <= set(openapi["paths"])
        assert (await client.get("/asyncapi")).status_code == 200
        asyncapi = await client.get("/asyncapi.json")
        assert asyncapi.status_code == 200
        # It reads exactly the topics the contracts list it as a consumer of, so each has its dead-letter topic.
        consumed = {channel["address"] for channel in asyncapi.json()["channels"].values()}
        assert consumed == {settings.topic(topic.name) for topic in topics_consumed_by(service)}
