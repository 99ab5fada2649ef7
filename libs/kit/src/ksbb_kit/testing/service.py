"""Run a service under test: its runtime started against the test namespace, in-process or on a real port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from ksbb_kit.auth import DevIssuer
from ksbb_kit.runtime import STOP_STEP_SECONDS
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.waiting import eventually

SettingsT = TypeVar("SettingsT", bound=KitSettings)


def free_port() -> int:
    """A localhost TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_namespace() -> str:
    """A unique prefix for topics, consumer groups and databases (one test or one test module)."""
    return f"t{uuid.uuid4().hex[:10]}."


def service_env(infra: Infra, namespace: str, issuer: DevIssuer, **overrides: Any) -> dict[str, Any]:
    """Settings values every service under test shares; pass them as keyword arguments to a settings class.

    Relays and retries are quick, and topics have 2 partitions so the broker stays small in long runs.
    """
    return {
        "env": "test",
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongodb_url": infra.mongodb_url,
        "topic_prefix": namespace,
        "jwks_url": str(issuer.jwks_path),
        "jwt_issuer": issuer.issuer,
        "jwt_audience": issuer.audience,
        "outbox_sweep_seconds": 0.5,
        "handler_backoff_seconds": 0.05,
        "topic_partitions": 2,
        **overrides,
    }


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


@contextlib.asynccontextmanager
async def running(app: FastAPI, *, ready_timeout: float = 60.0) -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan in this event loop and yield an ASGI-bound client once /readyz says ready."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
            await eventually(lambda: _ready(client), within=ready_timeout, interval=0.2,
                             what=f"{app.title} ready (/readyz 200)")
            yield client


@contextlib.asynccontextmanager
async def served(app: FastAPI, *, ready_timeout: float = 60.0) -> AsyncIterator[str]:
    """Serve an app with uvicorn on a free localhost port in this event loop; yields the base URL once ready.

    For clients that need a real socket: browsers, streaming responses, other processes.
    """
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"

    async def ready(client: httpx.AsyncClient) -> bool:
        if task.done():
            raise RuntimeError(f"{app.title} stopped before it was ready")
        return await _ready(client)

    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            await eventually(lambda: ready(client), within=ready_timeout, interval=0.2,
                             what=f"{app.title} ready on {base}")
        yield base
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            # The runtime bounds each step of its stop and logs what it still waits for (a task left behind
            # fails no test here); this only guards against a stop that never ends.
            await asyncio.wait_for(task, timeout=3 * STOP_STEP_SECONDS)


@dataclass(frozen=True)
class RunningService:
    """A started service under test: its app, settings and a client (ASGI, or HTTP on `base_url`)."""

    app: FastAPI
    settings: KitSettings
    client: httpx.AsyncClient
    base_url: str | None = None


@contextlib.asynccontextmanager
async def start_service(
    create_app: Callable[..., FastAPI],
    settings: KitSettings,
    *,
    over_http: bool = False,
    ready_timeout: float = 60.0,
    **app_overrides: Any,
) -> AsyncIterator[RunningService]:
    """Build a service with its composition root (`create_app(settings, **app_overrides)`) and run it until exit.

    `over_http=True` serves it on a real port (uvicorn) instead of calling it in-process through ASGI.
    """
    app = create_app(settings, **app_overrides)
    if not over_http:
        async with running(app, ready_timeout=ready_timeout) as client:
            yield RunningService(app, settings, client)
        return
    async with served(app, ready_timeout=ready_timeout) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield RunningService(app, settings, client, base)
