"""Test support: the real services on real ports behind a real nginx gateway, with their log lines captured.

Each service runs in this event loop under uvicorn, configured by the kit's `server_config` exactly as
`serve()` runs it in production (trusted proxy = the gateway's loopback address, root_path for its docs).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ksbb_kit.logging import JsonFormatter
from ksbb_kit.runtime import server_config
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.waiting import eventually

from ksbb_gateway.config import GatewayConfig, load_config
from ksbb_gateway.local import LocalGateway, free_port
from ksbb_gateway.sources import _settings_class

ALL_SERVICES = ("registry", "pledges", "notifier", "publisher")
#: Rate limits high enough that a test's own traffic never trips them (tests of limits render their own).
RELAXED = {"rate_limits": {"per_client": {"per_second": 10000, "burst": 10000},
                           "anonymous_writes": {"per_minute": 10000, "burst": 10000}}}


class CapturedLog(logging.Handler):
    """Every log record of the process as the JSON object the services write (request id, trace id included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._formatter = JsonFormatter("test")
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record, formatted in the emitting task (its request context)."""
        with contextlib.suppress(Exception):
            self.lines.append(json.loads(self._formatter.format(record)))

    def access(self, request_id: str) -> list[dict[str, Any]]:
        """The access lines of one request id (one per service that handled it)."""
        return [line for line in self.lines if line.get("logger") == "ksbb.access"
                and line.get("request_id") == request_id]

    def of_request(self, request_id: str) -> list[dict[str, Any]]:
        """Every line written while handling one request id."""
        return [line for line in self.lines if line.get("request_id") == request_id]


@contextlib.contextmanager
def captured_logs() -> Any:
    """Capture every log line (INFO and up) of the process while the block runs."""
    handler = CapturedLog()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("aiokafka", "kafka", "pymongo", "httpx", "httpcore", "faststream", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@dataclass
class RunningService:
    """One service on a real loopback port."""

    name: str
    app: Any
    settings: KitSettings
    url: str
    server: Any
    task: asyncio.Task[None]


@dataclass
class Platform:
    """Services + gateway under test."""

    services: dict[str, RunningService]
    gateway: LocalGateway
    log: CapturedLog
    extra_gateways: list[LocalGateway] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The gateway's base URL: the only one a client needs."""
        return self.gateway.url

    def upstreams(self) -> dict[str, str]:
        """service -> host:port of the running services."""
        return {name: service.url.removeprefix("http://") for name, service in self.services.items()}

    def another_gateway(
        self, documents: dict[str, dict[str, Any]], *, config: GatewayConfig | None = None,
        target_name: str = "local", **target_changes: Any,
    ) -> LocalGateway:
        """A second gateway (other limits, other target) in front of the same services; stopped with the platform."""
        changes = {"listen": f"127.0.0.1:{free_port()}", "upstreams": self.upstreams(),
                   "health_listen": None, **target_changes}
        gateway = LocalGateway(Path(tempfile.mkdtemp(prefix="ksbb-gateway-")), config=config or self.gateway.config,
                               target_name=target_name, target_changes=changes)
        gateway.prepare(documents)
        gateway.start()
        self.extra_gateways.append(gateway)
        return gateway


async def start_service(
    name: str, env: dict[str, Any], *, trusted_proxy: str, public_url: str, **overrides: Any
) -> RunningService:
    """Build and serve one service on a free port, the way `ksbb_kit.runtime.serve` runs it."""
    import uvicorn

    settings_class = _settings_class(name)
    values: dict[str, Any] = {**env, "forwarded_allow_ips": trusted_proxy, "root_path": f"/svc/{name}",
                              "http_host": "127.0.0.1", "http_port": free_port(), **overrides}
    if "dev_issuer_enabled" in settings_class.model_fields:
        values.setdefault("dev_issuer_enabled", True)
    if name == "publisher":
        values.setdefault("public_url", public_url)
    settings = settings_class(**values)
    app = importlib.import_module(f"ksbb_{name}.bootstrap").create_app(settings)
    server = uvicorn.Server(server_config(app, settings, lifespan="on", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(), name=f"serve-{name}")
    url = f"http://127.0.0.1:{settings.http_port}"

    async def ready() -> bool:
        if task.done():
            raise RuntimeError(f"{name} stopped before it was ready: {task.exception()!r}")
        async with httpx.AsyncClient(timeout=3) as client:
            # /readyz is on the service's own port only (never through the gateway).
            return (await client.get(f"{url}/readyz")).status_code == 200

    await eventually(ready, within=90, interval=0.2, what=f"{name} ready on {url}")
    return RunningService(name, app, settings, url, server, task)


async def stop_service(service: RunningService) -> None:
    """Let uvicorn finish and the runtime stop."""
    service.server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(service.task, timeout=20)


@contextlib.asynccontextmanager
async def platform(
    env: dict[str, Any],
    documents: dict[str, dict[str, Any]],
    *,
    services: Iterable[str] = ALL_SERVICES,
    config: GatewayConfig | None = None,
    service_overrides: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[Platform]:
    """Start services and one local gateway in front of them; everything is stopped afterwards."""
    config = config or load_config().with_changes(**RELAXED)
    listen = f"127.0.0.1:{free_port()}"
    local = config.target("local")
    trusted = local.proxy_bind or "127.0.0.1"
    started: dict[str, RunningService] = {}
    gateway: LocalGateway | None = None
    extra: list[LocalGateway] = []
    with captured_logs() as log:
        try:
            for name in services:
                started[name] = await start_service(
                    name, env, trusted_proxy=trusted, public_url=f"http://{listen}",
                    **(service_overrides or {}).get(name, {}),
                )
            upstreams = {name: started[name].url.removeprefix("http://") if name in started
                         else f"127.0.0.1:{free_port()}" for name in config.services}
            gateway = LocalGateway(Path(tempfile.mkdtemp(prefix="ksbb-gateway-")), config=config,
                                   target_changes={"listen": listen, "upstreams": upstreams})
            gateway.prepare(documents)
            gateway.start()
            running = Platform(services=started, gateway=gateway, log=log, extra_gateways=extra)
            yield running
        finally:
            for other in [*extra, *([gateway] if gateway else [])]:
                other.stop()
                shutil.rmtree(other.state, ignore_errors=True)
            for service in reversed(list(started.values())):
                await stop_service(service)
