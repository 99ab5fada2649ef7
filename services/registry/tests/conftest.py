"""Shared fixtures of the registry tests: one running service per test module, tokens, payload builders."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ksbb_contracts.areas import areas
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.plugin import running
from ksbb_registry.api.deps import Services
from ksbb_registry.bootstrap import create_app
from ksbb_registry.settings import RegistrySettings

KELURAHAN = [a.code for a in areas().level("kelurahan")]


@pytest.fixture(scope="module")
def module_namespace() -> str:
    """One namespace (topics, group, database) for every test of a module."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(scope="module")
def module_env(infra: Infra, module_namespace: str, dev_issuer: DevIssuer) -> dict[str, Any]:
    """Settings values of the module's service instance."""
    return {
        "env": "test",
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongodb_url": infra.mongodb_url,
        "topic_prefix": module_namespace,
        "jwks_url": str(dev_issuer.jwks_path),
        "jwt_issuer": dev_issuer.issuer,
        "jwt_audience": dev_issuer.audience,
        "outbox_sweep_seconds": 0.5,
        "handler_backoff_seconds": 0.05,
        "sweep_interval_seconds": 3600,  # tests call the sweeps directly
    }


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    """The module service's clock, moved by hand."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service_app(
    module_env: dict[str, Any], clock: ManualClock
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The running registry app and an HTTP client bound to it."""
    app = create_app(RegistrySettings(**module_env, report_limit_per_hour=3), clock=clock)
    async with running(app) as client:
        yield app, client


@pytest.fixture
def services(service_app: tuple[Any, httpx.AsyncClient]) -> Services:
    """The use cases of the module's service (to run its sweeps directly)."""
    return services_of_app(service_app[0])


@pytest.fixture
def registry_db(service_app: tuple[Any, httpx.AsyncClient]) -> Any:
    """The module service's MongoDB database (to inspect or simulate stored state)."""
    return service_app[0].state.runtime.db


def services_of_app(app: Any) -> Services:
    """The use cases the composition root installed on an app."""
    services: Services = app.state.registry
    return services


class Caller:
    """An HTTP client acting as one role."""

    def __init__(self, client: httpx.AsyncClient, token: str | None) -> None:
        self.client = client
        self.headers = {"authorization": f"Bearer {token}"} if token else {}

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request with this caller's token (extra headers merged)."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """GET."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """POST."""
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        """PATCH."""
        return await self.request("PATCH", url, **kwargs)


def organisation_payload(name: str = "Lembaga Uji") -> dict[str, Any]:
    """A valid organisation body."""
    return {
        "name": name,
        "kind": "ngo",
        "contact": {"name": "Sekretariat", "email": "kontak@lembaga.example", "phone": "021-5551234"},
        "area_codes": ["31.71"],
    }


_UNIQUE = itertools.count()


def recipient_payload(
    organisation_id: str,
    *,
    kelurahan: str | None = None,
    rw: int | None = -1,
    kind: str = "rw_rentan",
    name: str | None = None,
) -> dict[str, Any]:
    """A valid recipient body; without an explicit place it gets a unique kelurahan + RW (RW >= 50)."""
    suffix = uuid.uuid4().hex[:6]
    if kelurahan is None or rw == -1:
        n = next(_UNIQUE)
        kelurahan = kelurahan or KELURAHAN[n % len(KELURAHAN)]
        rw = 50 + n // len(KELURAHAN) if rw == -1 else rw
    return {
        "name": name or f"RW {rw} Uji {suffix}",
        "kind": kind,
        "organisation_id": organisation_id,
        "kelurahan_code": kelurahan,
        "rw": rw,
        "street_address": f"Jl. Uji No. {suffix}",
        "beneficiaries": {"households": 40, "people": 160, "children": 50, "elderly": 10, "disabled": 2},
        "contact": {"name": "Ibu Sari", "phone": "0812-3456-7890", "email": "sari@example.org"},
    }


def need_payload(*, quantity: int = 10, recurrence: str = "none", days: int = 60) -> dict[str, Any]:
    """A valid need body."""
    return {
        "item": "sembako",
        "quantity": quantity,
        "priority": "high",
        "needed_by": (date.today() + timedelta(days=days)).isoformat(),
        "recurrence": recurrence,
    }
