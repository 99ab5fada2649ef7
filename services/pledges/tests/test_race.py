"""Two service processes, 500 concurrent 1-unit pledges against a need of 100: exactly 100 succeed."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ksbb_contracts.events.registry import NeedOpened
from ksbb_kit.auth import DevIssuer
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.kafka import publish_events
from ksbb_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration

#: Attempts per pledge when the connection fails before an answer arrives.
RETRIES = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(executable: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """One `ksbb-pledges` process writing its output to `log` (Popen returns at once)."""
    with log.open("wb") as output:
        return subprocess.Popen([executable], env=env, stdout=output, stderr=subprocess.STDOUT)


def log_tails(logs: list[Path]) -> str:
    """The last lines each service process wrote, for a failure message."""
    return "\n".join(
        f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]) for log in logs
    )


async def wait_ready(client: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes]) -> None:
    async def ready() -> bool:
        assert process.poll() is None, "service process exited"
        return (await client.get(f"{url}/readyz")).status_code == 200  # a refused connection: not yet

    await eventually(ready, within=90, interval=0.3, what=f"{url} ready")


async def test_two_processes_never_over_commit(
    infra: Infra, dev_issuer: DevIssuer, namespace: str, service: Any, tmp_path: Path
) -> None:
    executable = shutil.which("ksbb-pledges")
    assert executable, "the ksbb-pledges entry point is installed in the workspace"
    ports = [free_port(), free_port()]
    processes = []
    logs = [tmp_path / f"pledges-{index}.log" for index in range(len(ports))]
    for port, log in zip(ports, logs, strict=True):
        env = {
            **os.environ,
            "KSBB_PLEDGES_HTTP_PORT": str(port),
            "KSBB_TOPIC_PREFIX": namespace,
            "KSBB_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "KSBB_MONGODB_URL": infra.mongodb_url,
            "KSBB_JWKS_URL": str(dev_issuer.jwks_path),
            "KSBB_JWT_ISSUER": dev_issuer.issuer,
            "KSBB_JWT_AUDIENCE": dev_issuer.audience,
            "KSBB_ENV": "test",
            "KSBB_LOG_LEVEL": "WARNING",
        }
        processes.append(start_service(executable, env, log))
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    # Idle connections expire well before the servers' 5 s keep-alive timeout: reusing one the server is
    # closing at that moment fails the request (a ReadError) on a busy machine.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=1)
    try:
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            for url, process in zip(urls, processes, strict=True):
                await wait_ready(client, url, process)
            need = service.need("ned_race", quantity=100)
            await publish_events(
                infra.kafka_bootstrap, namespace, [NeedOpened(need=need, occurred_at=datetime.now(UTC))]
            )

            async def known() -> bool:
                return all([(await client.get(f"{url}/v1/needs/ned_race/ledger")).status_code == 200 for url in urls])

            await eventually(known, within=60, what="ledger in both processes")
            planned = (date.today() + timedelta(days=2)).isoformat()
            tokens = [dev_issuer.token("donor", subject=f"racer-{i % 25}") for i in range(500)]

            async def pledge(index: int) -> int:
                # A donor's client retries a request whose answer was lost (a connection the busy server
                # closed) with the same Idempotency-Key, which makes the retry safe: never a second pledge.
                headers = {"authorization": f"Bearer {tokens[index]}", "idempotency-key": f"race-{index}"}
                for attempt in range(RETRIES):
                    try:
                        response = await client.post(
                            f"{urls[(index + attempt) % 2]}/v1/pledges",
                            headers=headers,
                            json={"need_id": "ned_race", "quantity": 1, "planned_date": planned},
                        )
                    except httpx.TransportError:
                        if attempt == RETRIES - 1:
                            raise
                        continue
                    if response.status_code == 409:
                        assert response.json()["details"]["available"] == 0
                    return response.status_code
                raise AssertionError("unreachable")

            statuses = Counter(await asyncio.gather(*(pledge(i) for i in range(500))))
            assert statuses == Counter({201: 100, 409: 400}), log_tails(logs)
            ledger = (await client.get(f"{urls[0]}/v1/needs/ned_race/ledger")).json()
            admin = {"authorization": f"Bearer {dev_issuer.token('admin')}"}
            pledges = (await client.get(f"{urls[1]}/v1/needs/ned_race/pledges", headers=admin)).json()
            live = sum(p["quantity"] for p in pledges if p["status"] in ("pledged", "confirmed", "dispatched"))
            assert ledger["committed"] == live == 100
            assert len({p["pledge_id"] for p in pledges}) == 100
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
