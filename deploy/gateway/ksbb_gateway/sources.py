"""The services' OpenAPI documents, produced by building each service's app (nothing is started)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
from collections.abc import Iterable
from typing import Any

from ksbb_kit.settings import KitSettings


def _settings_class(service: str) -> type[KitSettings]:
    module = importlib.import_module(f"ksbb_{service}.settings")
    for value in vars(module).values():
        if inspect.isclass(value) and issubclass(value, KitSettings) and value is not KitSettings:
            if getattr(value, "service_name", None) == service:
                return value
    raise LookupError(f"ksbb_{service}.settings has no settings class for {service!r}")


async def _document(service: str) -> dict[str, Any]:
    bootstrap = importlib.import_module(f"ksbb_{service}.bootstrap")
    settings_class = _settings_class(service)
    # Development settings with the local token issuer: production settings refuse to load without real
    # secrets and identity provider, which an OpenAPI document never needs (nothing is started).
    values: dict[str, Any] = {"env": "development"}
    if "dev_issuer_enabled" in settings_class.model_fields:
        values["dev_issuer_enabled"] = True
    app = bootstrap.create_app(settings_class(**values))
    document: dict[str, Any] = app.openapi()
    runtime = getattr(app.state, "runtime", None)
    if runtime is not None:  # the app was built, never started: release its unstarted Kafka clients
        with contextlib.suppress(Exception):
            await runtime.publisher.stop()
        with contextlib.suppress(Exception):
            await runtime.mongo.close()
    return document


def service_documents(services: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, keyed by service name."""

    async def collect() -> dict[str, dict[str, Any]]:
        return {name: await _document(name) for name in services}

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running: the normal case for the command line
    else:
        raise RuntimeError("service_documents() builds apps in its own event loop; use service_documents_async")
    return asyncio.run(collect())


async def service_documents_async(services: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`service_documents` for callers already inside an event loop (tests)."""
    return {name: await _document(name) for name in services}
