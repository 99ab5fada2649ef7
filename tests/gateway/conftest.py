"""Fixtures of the gateway tests: the gateway package on the path, the services' OpenAPI documents, a platform."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "gateway"))

from ksbb_gateway.config import GatewayConfig, load_config  # noqa: E402
from ksbb_gateway.sources import service_documents_async  # noqa: E402
from ksbb_gateway.testing import Platform, platform  # noqa: E402
from ksbb_kit.auth import DevIssuer  # noqa: E402
from ksbb_kit.testing.infra import Infra  # noqa: E402
from ksbb_kit.testing.plugin import drop_namespace  # noqa: E402


@pytest.fixture(scope="session")
def gateway_config() -> GatewayConfig:
    """deploy/gateway/gateway.toml."""
    return load_config()


@pytest.fixture(scope="session")
async def documents(gateway_config: GatewayConfig) -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, built from its app (nothing started)."""
    return await service_documents_async(gateway_config.services)


@pytest.fixture(scope="module")
async def module_env(infra: Infra, dev_issuer: DevIssuer) -> AsyncIterator[dict[str, Any]]:
    """Service settings for one test module: its own topic/database prefix, deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield {
        "env": "test",
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongodb_url": infra.mongodb_url,
        "topic_prefix": prefix,
        "jwks_url": str(dev_issuer.jwks_path),
        "jwt_issuer": dev_issuer.issuer,
        "jwt_audience": dev_issuer.audience,
        "outbox_sweep_seconds": 0.5,
        "handler_backoff_seconds": 0.05,
        "topic_partitions": 2,
        "sweep_interval_seconds": 3600,
    }
    await drop_namespace(infra, prefix)


@pytest.fixture(scope="module")
async def stack(module_env: dict[str, Any], documents: dict[str, dict[str, Any]]) -> AsyncIterator[Platform]:
    """The four services behind one gateway (relaxed rate limits), shared by a module's tests."""
    # Heartbeats every 2 s: longer than the 1 s read timeout some tests give ordinary routes.
    overrides = {"publisher": {"sse_heartbeat_seconds": 2.0, "feed_poll_seconds": 0.5}}
    async with platform(module_env, documents, service_overrides=overrides) as running:
        yield running
