"""Gateway benchmark: the latency nginx adds, for one read and one write, direct vs through the gateway.

Starts the registry and pledges services as real processes (their production entry points, behind the
gateway exactly like `make run`: trusted proxy = the gateway's loopback address, docs under /svc/...),
and the local nginx gateway in front of them, on the shared infrastructure with a scratch topic/database
prefix. Then, in the same run and interleaved request by request, it measures p50/p99 of

* a read:  GET /v1/areas/{code} (registry; reference data, no database round trip),
* a write: PUT /v1/donors/me (pledges; a MongoDB update plus an outbox event to Kafka),

sent straight to the service port and through the gateway over kept-alive connections. The goal in the
issue is at most 1 ms added at p50. Figures are printed and, with `--json`, written as result rows
(through the gateway, next to the direct figure as baseline) for docs/performance.md; never asserted.

    uv run --no-sync python bench/gateway_bench.py [--requests 600] [--json results.json]
    uv run --no-sync python bench/gateway_bench.py --tiny            # a smoke run (the test suite's)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy" / "gateway"))

from common import Results, Row, bench_arguments, infra_env, ratio  # noqa: E402
from ksbb_gateway.config import load_config  # noqa: E402
from ksbb_gateway.local import LocalGateway, free_port  # noqa: E402
from ksbb_gateway.testing import RELAXED  # noqa: E402
from ksbb_kit.auth import DevIssuer, Role  # noqa: E402
from ksbb_kit.testing.infra import Infra  # noqa: E402
from ksbb_kit.testing.plugin import drop_namespace  # noqa: E402

SERVICES = ("registry", "pledges")


def start_services(env: dict[str, str], logs: Path) -> dict[str, tuple[subprocess.Popen[bytes], int]]:
    """Each service as its own process on a free loopback port."""
    started = {}
    for name in SERVICES:
        port = free_port()
        log = (logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", f"ksbb_{name}.main"],
            env={**env, f"KSBB_{name.upper()}_HTTP_PORT": str(port), f"KSBB_{name.upper()}_ROOT_PATH": f"/svc/{name}",
                 "KSBB_LOG_LEVEL": "WARNING"},
            stdout=log, stderr=subprocess.STDOUT,
        )
        started[name] = (process, port)
    return started


def wait_ready(services: dict[str, tuple[subprocess.Popen[bytes], int]], logs: Path) -> None:
    """Until every service answers /readyz (on its own port)."""
    deadline = time.monotonic() + 120
    for name, (process, port) in services.items():
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited; see {logs / (name + '.log')}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} not ready; see {logs / (name + '.log')}")
            time.sleep(0.3)


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of the samples, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(
    direct: httpx.Client, gateway: httpx.Client, method: str, path: str, requests: int, **kwargs: Any
) -> dict[str, list[float]]:
    """Latency samples (ms) of the same request sent both ways, alternating which goes first."""
    samples: dict[str, list[float]] = {"direct": [], "gateway": []}
    clients = [("direct", direct), ("gateway", gateway)]
    for _warmup in range(min(50, requests // 5)):
        for _, client in clients:
            client.request(method, path, **kwargs).raise_for_status()
    for index in range(requests):
        for label, client in clients if index % 2 == 0 else reversed(clients):
            started = time.perf_counter()
            response = client.request(method, path, **kwargs)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            samples[label].append(elapsed)
    return samples


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = bench_arguments(__doc__)
    # 600 pairs put the paired median within a few hundredths of a millisecond of what 2000 give; the writes
    # (a database round trip and an outbox event each) were most of the benchmark's minutes.
    parser.add_argument("--requests", type=int, default=600, help="measured requests per path and way")
    args = parser.parse_args()
    requests = 100 if args.tiny else args.requests
    results = Results("gateway")
    work = Path(tempfile.mkdtemp(prefix="ksbb-gateway-bench-"))
    issuer = DevIssuer(work / "issuer")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    config = load_config().with_changes(**RELAXED)
    proxy = config.target("local").proxy_bind or "127.0.0.1"
    env = {
        **os.environ, **infra_env(), "KSBB_ENV": "development", "KSBB_TOPIC_PREFIX": prefix,
        "KSBB_TOPIC_PARTITIONS": "1",
        "KSBB_JWKS_URL": str(issuer.jwks_path), "KSBB_JWT_ISSUER": issuer.issuer, "KSBB_JWT_AUDIENCE": issuer.audience,
        "KSBB_DEV_ISSUER_ENABLED": "true", "KSBB_FORWARDED_ALLOW_IPS": proxy,
    }
    began = time.perf_counter()
    services = start_services(env, work)
    gateway: LocalGateway | None = None
    try:
        wait_ready(services, work)
        documents = {name: httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).json()
                     for name, (_, port) in services.items()}
        upstreams = {name: f"127.0.0.1:{services[name][1]}" if name in services else f"127.0.0.1:{free_port()}"
                     for name in config.target("local").upstreams}
        gateway = LocalGateway(Path(tempfile.mkdtemp(prefix="ksbb-gateway-")), config=config,
                               target_changes={"listen": f"127.0.0.1:{free_port()}", "upstreams": upstreams})
        gateway.prepare({**{n: {"paths": {}} for n in config.services}, **documents})
        gateway.start()
        donor = {"authorization": f"Bearer {issuer.token(Role.DONOR, subject='donor-bench')}"}
        profile = {"kind": "person", "display_name": "Kolaborator Uji", "show_name": True}
        print(f"[gateway] services and gateway ready after {time.perf_counter() - began:.1f} s; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before measuring", flush=True)
        with httpx.Client(base_url=gateway.url, timeout=10) as through:
            for label, service, method, path, kwargs in (
                ("read GET /v1/areas/{code}", "registry", "GET", "/v1/areas/31.71", {}),
                ("write PUT /v1/donors/me", "pledges", "PUT", "/v1/donors/me", {"json": profile, "headers": donor}),
            ):
                with httpx.Client(base_url=f"http://127.0.0.1:{services[service][1]}", timeout=10) as direct:
                    measured = time.perf_counter()
                    samples = measure(direct, through, method, path, requests, **kwargs)
                    measured = time.perf_counter() - measured
                row: dict[str, Any] = {
                    way: {"p50_ms": round(percentile(s, 0.50), 3), "p99_ms": round(percentile(s, 0.99), 3),
                          "mean_ms": round(statistics.fmean(s), 3)} for way, s in samples.items()}
                row["added_p50_ms"] = round(row["gateway"]["p50_ms"] - row["direct"]["p50_ms"], 3)
                row["added_p99_ms"] = round(row["gateway"]["p99_ms"] - row["direct"]["p99_ms"], 3)
                # Each gateway request against the direct one sent right before or after it: robust to load swings.
                paired = [g - d for g, d in zip(samples["gateway"], samples["direct"], strict=True)]
                row["paired_median_added_ms"] = round(statistics.median(paired), 3)
                # The median of paired differences is the added p50 that load swings on a shared machine
                # disturb least (each gateway request against the direct one sent right before or after it).
                added = row["paired_median_added_ms"]
                results.add(Row(
                    f"gateway: {label} p50 through nginx", row["gateway"]["p50_ms"], "ms",
                    "≤ 1 ms added at p50 (median of paired differences)",
                    row["direct"]["p50_ms"], "ms p50 straight to the service",
                    round(ratio(row["gateway"]["p50_ms"], row["direct"]["p50_ms"], smaller_is_better=True), 2),
                    added <= 1.0,
                    f"median of paired differences {added:+.3f} ms; difference of the p50s "
                    f"{row['added_p50_ms']:+.3f} ms, of the p99s {row['added_p99_ms']:+.3f} ms (p99 "
                    f"{row['gateway']['p99_ms']:.2f} vs {row['direct']['p99_ms']:.2f} ms); {requests} requests each "
                    f"way, interleaved ({measured:.0f} s)",
                ))
                print(f"[gateway] {label}: direct p50 {row['direct']['p50_ms']:.3f} ms / p99 "
                      f"{row['direct']['p99_ms']:.3f} ms; through nginx p50 {row['gateway']['p50_ms']:.3f} ms / p99 "
                      f"{row['gateway']['p99_ms']:.3f} ms; added p50 {row['added_p50_ms']:+.3f} ms, "
                      f"p99 {row['added_p99_ms']:+.3f} ms, paired median {row['paired_median_added_ms']:+.3f} ms "
                      f"(goal: <= 1 ms at p50; {requests} requests each way in {measured:.1f} s)",
                      flush=True)
        results.notes.append(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores after measuring")
        results.write(args.json)
        return 0
    finally:
        stopping = time.perf_counter()
        if gateway is not None:
            gateway.stop()
            shutil.rmtree(gateway.state, ignore_errors=True)
        for process, _ in services.values():
            process.terminate()
        for process, _ in services.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        values = infra_env()
        asyncio.run(drop_namespace(Infra(values["KSBB_KAFKA_BOOTSTRAP"], values["KSBB_MONGODB_URL"], "bench"), prefix))
        print(f"[gateway] stopped and cleaned up in {time.perf_counter() - stopping:.1f} s "
              f"({time.perf_counter() - began:.0f} s in all)", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
