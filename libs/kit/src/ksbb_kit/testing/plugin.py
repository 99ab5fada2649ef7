"""pytest plugin: one broker and one database server per run, a fresh namespace per test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ksbb_kit.auth import DevIssuer
from ksbb_kit.testing.infra import Infra, resolve_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """The run's Kafka broker and MongoDB-protocol server; fails loudly when none can be had."""
    try:
        found, containers = resolve_infra()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    os.environ.setdefault("KSBB_KAFKA_BOOTSTRAP", found.kafka_bootstrap)
    os.environ.setdefault("KSBB_MONGODB_URL", found.mongodb_url)
    yield found
    for container in containers:
        with contextlib.suppress(Exception):
            container.stop()  # type: ignore[attr-defined]


@pytest.fixture
async def namespace(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A unique prefix for this test's topics, consumer groups and databases, deleted afterwards.

    Deleting them keeps the broker and the in-memory database server small during a long run.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield prefix
    if "infra" in request.fixturenames:
        await drop_namespace(request.getfixturevalue("infra"), prefix)


@pytest.fixture(scope="session")
def dev_issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    """A real token issuer with its own key and JWKS file."""
    return DevIssuer(Path(tmp_path_factory.mktemp("dev-issuer")))


@pytest.fixture
async def kit_env(infra: Infra, namespace: str, dev_issuer: DevIssuer) -> AsyncIterator[dict[str, Any]]:
    """Settings values every service under test shares (pass as keyword arguments to a settings class)."""
    yield {
        "env": "test",
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongodb_url": infra.mongodb_url,
        "topic_prefix": namespace,
        "jwks_url": str(dev_issuer.jwks_path),
        "jwt_issuer": dev_issuer.issuer,
        "jwt_audience": dev_issuer.audience,
        "outbox_sweep_seconds": 0.5,
        "handler_backoff_seconds": 0.05,
        "topic_partitions": 2,
    }


async def drop_namespace(infra: Infra, namespace: str) -> None:
    """Delete a test namespace's topics and databases (best effort)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from pymongo import AsyncMongoClient

    with contextlib.suppress(Exception):
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
        try:
            for name in await mongo.list_database_names():
                if name.startswith(namespace.replace(".", "_")):
                    await mongo.drop_database(name)
        finally:
            await mongo.close()
    with contextlib.suppress(Exception):
        admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(namespace)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()


def pytest_configure(config: pytest.Config) -> None:
    """Tests sign tokens with the development issuer; services trust it only when told so explicitly."""
    os.environ.setdefault("KSBB_DEV_ISSUER_ENABLED", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests without a marker are unit tests; async tests share the session loop."""
    for item in items:
        if not any(item.get_closest_marker(m) for m in ("unit", "integration", "e2e")):
            item.add_marker(pytest.mark.unit)


@contextlib.asynccontextmanager
async def running(app: Any, *, ready_timeout: float = 60.0) -> AsyncIterator[Any]:
    """Run an ASGI app's lifespan and yield an httpx client bound to it, once /readyz says ready."""
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            deadline = asyncio.get_running_loop().time() + ready_timeout
            while True:
                response = await client.get("/readyz")
                if response.status_code == 200:
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"service not ready: {response.text}")
                await asyncio.sleep(0.2)
            yield client
