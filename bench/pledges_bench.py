"""Benchmark of pledge creation against a bare FastAPI + PyMongo endpoint doing one comparable write.

Usage (infrastructure running):
    uv run --no-sync python bench/pledges_bench.py [--requests 2000] [--concurrency 32] [--needs 1]

Starts, in the same run and on the same machine: the real `ksbb-pledges` service (own topic prefix and
database) and a baseline app whose endpoint does one conditional `update_one` with `$inc`/`$push` on
one document (the same shape as a reservation, without auth, outbox, quantities or copies). Both get the
same load (one hot need by default — the worst case for the optimistic retry — or spread over
`--needs`); the script prints throughput, p50/p99 latency, their ratio, and the service's RSS idle and
under load (from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from ksbb_contracts.events.registry import NeedOpened, NeedPublic
from ksbb_contracts.vocab import Item, NeedStatus, Priority
from ksbb_kit.auth import DevIssuer
from ksbb_kit.testing.kafka import publish_events
from pydantic import BaseModel

KAFKA = os.environ.get("KSBB_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
MONGO = os.environ.get("KSBB_MONGODB_URL", "mongodb://127.0.0.1:27018/")


class BaselineBody(BaseModel):
    """The baseline's request body."""

    need_id: str
    quantity: int


def baseline_app() -> object:
    """The bare endpoint: one conditional single-document write, like a reservation."""
    from fastapi import FastAPI
    from pymongo import AsyncMongoClient

    app = FastAPI()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGO)
    collection = client[os.environ["BENCH_DB"]]["needs"]

    @app.post("/pledges", status_code=201)
    async def pledge(body: BaselineBody) -> dict[str, str]:
        pledge_id = uuid.uuid4().hex
        result = await collection.update_one(
            {"_id": body.need_id, "$expr": {"$lte": [{"$add": ["$committed", body.quantity]}, "$requested"]}},
            {"$inc": {"committed": body.quantity, "rev": 1}, "$push": {"pledges": {"id": pledge_id}}},
            upsert=False,
        )
        return {"pledge_id": pledge_id, "matched": str(result.matched_count)}

    return app


def start_servers(env: dict[str, str], baseline_port: int) -> tuple[subprocess.Popen[bytes], ...]:
    """The real service and the baseline app, as child processes."""
    executable = shutil.which("ksbb-pledges") or "ksbb-pledges"
    service = subprocess.Popen([executable], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    command = [sys.executable, "-m", "uvicorn", "pledges_bench:baseline_app", "--factory"]
    command += [
        "--port",
        str(baseline_port),
        "--log-level",
        "warning",
        "--app-dir",
        str(Path(__file__).parent),
    ]
    baseline = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return service, baseline


def free_port() -> int:
    """A free local TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_ready(url: str, path: str) -> None:
    """Poll until the server answers."""
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(url + path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} did not become ready")


async def load(
    url: str, bodies: list[dict[str, object]], headers: dict[str, str], concurrency: int
) -> tuple[float, list[float], int]:
    """Send every body with bounded concurrency; returns seconds, latencies, successes."""
    latencies: list[float] = []
    ok = 0
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal ok
            while not queue.empty():
                body = queue.get_nowait()
                began = time.perf_counter()
                response = await client.post(url, json=body, headers=headers)
                latencies.append(time.perf_counter() - began)
                ok += response.status_code == 201

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began, latencies, ok


def summary(name: str, seconds: float, latencies: list[float], ok: int) -> tuple[float, float, float]:
    """Print and return throughput, p50 and p99 (ms)."""
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1000
    rate = len(latencies) / seconds
    print(f"{name:<10} {rate:8.1f} req/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({ok} × 201)")
    return rate, p50, p99


async def main() -> None:
    """Run both servers, load them the same way, print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--needs", type=int, default=1, help="spread the load over this many needs")
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    issuer = DevIssuer(Path(tempfile.mkdtemp(prefix="ksbb-bench-")))
    service_port, baseline_port = free_port(), free_port()
    env = {
        **os.environ,
        "KSBB_PLEDGES_HTTP_PORT": str(service_port),
        "KSBB_TOPIC_PREFIX": prefix,
        "KSBB_KAFKA_BOOTSTRAP": KAFKA,
        "KSBB_MONGODB_URL": MONGO,
        "KSBB_JWKS_URL": str(issuer.jwks_path),
        "KSBB_JWT_ISSUER": issuer.issuer,
        "KSBB_JWT_AUDIENCE": issuer.audience,
        "KSBB_LOG_LEVEL": "WARNING",
        "BENCH_DB": prefix.replace(".", "_") + "baseline",
    }
    service, baseline = start_servers(env, baseline_port)
    try:
        service_url, baseline_url = f"http://127.0.0.1:{service_port}", f"http://127.0.0.1:{baseline_port}"
        await wait_ready(service_url, "/readyz")
        await wait_ready(baseline_url, "/docs")
        total = args.requests * 2
        need_ids = [f"ned_bench_{n:03d}" for n in range(args.needs)]
        events = [
            NeedOpened(
                need=NeedPublic(
                    need_id=need_id,
                    recipient_id="rcp_bench",
                    organisation_id="org_bench",
                    kelurahan_code="31.71.01.1001",
                    item=Item.SEMBAKO,
                    quantity=total,
                    unit="paket",
                    priority=Priority.HIGH,
                    needed_by=date.today() + timedelta(days=30),
                    status=NeedStatus.OPEN,
                    version=1,
                ),
                occurred_at=datetime.now(UTC),
            )
            for need_id in need_ids
        ]
        await publish_events(KAFKA, prefix, events)
        from pymongo import AsyncMongoClient

        mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGO)
        await mongo[env["BENCH_DB"]]["needs"].insert_many(
            [{"_id": n, "requested": total, "committed": 0, "rev": 0, "pledges": []} for n in need_ids]
        )
        await mongo.close()
        async with httpx.AsyncClient() as client:
            for need_id in need_ids:
                for _ in range(300):
                    if (await client.get(f"{service_url}/v1/needs/{need_id}/ledger")).status_code == 200:
                        break
                    await asyncio.sleep(0.2)
        idle = rss_mb(service.pid)
        token = issuer.token("donor", subject="bench-donor", ttl_seconds=3600)
        planned = (date.today() + timedelta(days=2)).isoformat()
        bodies = [
            {"need_id": need_ids[i % len(need_ids)], "quantity": 1, "planned_date": planned}
            for i in range(args.requests)
        ]
        # Warm-up, then the measured runs, interleaved in the same process lifetime.
        await load(f"{baseline_url}/pledges", bodies[:50], {}, 8)
        await load(f"{service_url}/v1/pledges", bodies[:50], {"authorization": f"Bearer {token}"}, 8)
        print(f"{args.requests} creates each over {args.needs} need(s), concurrency {args.concurrency}:")
        base = summary("baseline", *await load(f"{baseline_url}/pledges", bodies, {}, args.concurrency))
        svc = summary(
            "pledges",
            *await load(
                f"{service_url}/v1/pledges",
                bodies,
                {"authorization": f"Bearer {token}"},
                args.concurrency,
            ),
        )
        loaded = rss_mb(service.pid)
        print(
            f"ratio pledges/baseline: throughput {svc[0] / base[0]:.2f}×, p50 {svc[1] / base[1]:.2f}×, "
            f"p99 {svc[2] / base[2]:.2f}×"
        )
        print(f"pledges RSS: idle {idle:.0f} MiB, after load {loaded:.0f} MiB")
    finally:
        for process in (service, baseline):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    asyncio.run(main())
