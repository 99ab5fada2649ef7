"""pytest plugin: one broker and one database server per run, a fresh namespace per test (or per module)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ksbb_kit.auth import DevIssuer
from ksbb_kit.testing.infra import Infra, resolve_infra
from ksbb_kit.testing.service import new_namespace, running, service_env

__all__ = ["drop_namespace", "running"]  # `running` moved to ksbb_kit.testing.service; kept importable here


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
    prefix = new_namespace()
    yield prefix
    if "infra" in request.fixturenames:
        await drop_namespace(request.getfixturevalue("infra"), prefix)


@pytest.fixture(scope="module")
async def module_namespace(infra: Infra) -> AsyncIterator[str]:
    """One namespace shared by every test of a module (a service started once per module), deleted afterwards."""
    prefix = new_namespace()
    yield prefix
    await drop_namespace(infra, prefix)


@pytest.fixture(scope="session")
def dev_issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    """A real token issuer with its own key and JWKS file."""
    return DevIssuer(Path(tmp_path_factory.mktemp("dev-issuer")))


@pytest.fixture
async def kit_env(infra: Infra, namespace: str, dev_issuer: DevIssuer) -> AsyncIterator[dict[str, Any]]:
    """Settings values every service under test shares (pass as keyword arguments to a settings class)."""
    yield service_env(infra, namespace, dev_issuer)


@pytest.fixture(scope="module")
def module_kit_env(infra: Infra, module_namespace: str, dev_issuer: DevIssuer) -> dict[str, Any]:
    """`kit_env` for a service shared by a module's tests; sweeps only run when a test calls them."""
    return service_env(infra, module_namespace, dev_issuer, sweep_interval_seconds=3600)


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

