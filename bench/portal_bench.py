"""Portal benchmark: server time to first byte and compressed page weight of the portal's busiest pages.

Starts the four services, the portal (frontends/portal) and the local nginx gateway as real processes on the
shared infrastructure under a scratch topic/database prefix, exactly as `make run` wires them (the portal calls
the API through the gateway). Seeds an organisation, recipients with open needs and pledges through the API
with development tokens, and gives each of 20 donors a portal session (made in the portal's own session
store, so the figures measure page serving, not the identity provider's sign-in page).

Then 20 users request, in a loop, the three pages of the issue:

* the needs list      GET /portal/needs
* the pledge form     GET /portal/needs/{need_id}/pledge
* "my pledges"        GET /portal/my/pledges

under two load models, each first straight to the portal's port, then through the gateway:

* concurrent users (the goal's model): each user loads a page, then thinks 1–3 s (uniformly at random,
  seeded per user) before the next, as load-testing tools model people using a site;
* back to back (closed loop, saturation): each user asks for the next page as soon as the last one arrived,
  so the 20 users keep the 2 CPUs busy; this shows how the portal degrades, not what a user waits.

It reports p50/p95/p99 of the time to first byte (headers received) per page and model, and each page's
weight as the browser downloads it through the gateway: HTML + CSS + JS, gzip-compressed. Goals in the issue:
p50 ≤ 100 ms at the portal on this machine under 20 concurrent users (judged on the concurrent-users model),
≤ 60 KB compressed per page. The baseline, measured in the same run under the same 20 users back to back, is
the time to first byte of the public API's needs page (GET /v1/public/needs, the publisher's JSON behind the
needs list) straight from its port. Figures are printed and, with `--json`, written as result rows; never
asserted.

    uv run --no-sync python bench/portal_bench.py [--users 20] [--seconds 10] [--think-seconds 30] [--json results.json]
    uv run --no-sync python bench/portal_bench.py --tiny            # a smoke run (the test suite's)
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy" / "gateway"))

from common import Results, Row, bench_arguments, infra_env, ratio  # noqa: E402
from ksbb_contracts.areas import areas  # noqa: E402
from ksbb_gateway.config import load_config  # noqa: E402
from ksbb_gateway.local import LocalGateway, free_port  # noqa: E402
from ksbb_gateway.testing import RELAXED  # noqa: E402
from ksbb_kit.auth import DevIssuer  # noqa: E402
from ksbb_kit.testing.infra import Infra  # noqa: E402
from ksbb_kit.testing.plugin import drop_namespace  # noqa: E402
from ksbb_portal.sessions import Person, SessionStore, Tokens, now_utc  # noqa: E402

SERVICES = ("registry", "pledges", "notifier", "publisher")
PORTAL_BIND = "127.0.0.3"
P50_GOAL_MS, WEIGHT_GOAL_KB = 100.0, 60.0
THINK_SECONDS = (1.0, 3.0)  # a user's pause between two pages in the concurrent-users model
PAGES = ("needs list", "pledge form", "my pledges")
DEV_SECRET = "changeme-dev-secret"  # the portal's development secret key (keys its session-id digests)


def spawn(module: str, env: dict[str, str], log: Path, profile: Path | None = None) -> subprocess.Popen[bytes]:
    """One process with its log file (under cProfile when asked)."""
    wrapper = ["-m", "cProfile", "-o", str(profile)] if profile else []
    return subprocess.Popen([sys.executable, *wrapper, "-m", module], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


async def wait_ready(name: str, process: subprocess.Popen[bytes], port: int, logs: Path) -> None:
    """Until a process answers /readyz on its own port."""
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(timeout=3) as client:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited; see {logs / (name + '.log')}")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} not ready; see {logs / (name + '.log')}")
            await asyncio.sleep(0.3)


class Platform:
    """Services, portal and gateway as processes, with a scratch namespace."""

    def __init__(self, base_env: dict[str, str], state: Path, profile: Path | None = None) -> None:
        self.profile = profile
        self.state = state
        self.logs = state / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.prefix = f"bportal{uuid.uuid4().hex[:8]}."
        self.issuer = DevIssuer(state / "dev-issuer")
        config = load_config().with_changes(**RELAXED)
        self.config = config
        local = config.target("local")
        self.gateway_listen = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.gateway_listen}"
        self.env = {
            **os.environ, **base_env, "KSBB_ENV": "development", "KSBB_TOPIC_PREFIX": self.prefix,
            "KSBB_DEV_ISSUER_ENABLED": "true", "KSBB_JWKS_URL": str(self.issuer.jwks_path),
            "KSBB_JWT_ISSUER": self.issuer.issuer, "KSBB_JWT_AUDIENCE": self.issuer.audience,
            "KSBB_FORWARDED_ALLOW_IPS": local.proxy_bind or "", "KSBB_LOG_LEVEL": "WARNING",
            "KSBB_OUTBOX_SWEEP_SECONDS": "0.5",
        }
        self.processes: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        self.gateway: LocalGateway | None = None

    async def start(self) -> None:
        """Services, then the portal, then nginx in front of them."""
        for name in SERVICES:
            port = free_port()
            env = {**self.env, f"KSBB_{name.upper()}_HTTP_PORT": str(port),
                   f"KSBB_{name.upper()}_ROOT_PATH": f"/svc/{name}", f"KSBB_{name.upper()}_PUBLIC_URL": self.url}
            self.processes[name] = (spawn(f"ksbb_{name}.main", env, self.logs / f"{name}.log"), port)
        port = free_port()
        portal_env = {**self.env, "KSBB_PORTAL_HTTP_PORT": str(port), "KSBB_PORTAL_API_URL": self.url,
                      "KSBB_PORTAL_PUBLIC_ORIGIN": self.url, "KSBB_PORTAL_API_BIND_ADDRESS": PORTAL_BIND,
                      # Never contacted: every session below holds a long-lived development token.
                      "KSBB_PORTAL_OIDC_ISSUER": "http://127.0.0.1:9/realms/bench"}
        self.processes["portal"] = (spawn("ksbb_portal.main", portal_env, self.logs / "portal.log", self.profile),
                                    port)
        for name, (process, port) in self.processes.items():
            await wait_ready(name, process, port, self.logs)
        async with httpx.AsyncClient(timeout=10) as client:
            documents = {name: (await client.get(f"http://127.0.0.1:{port}/openapi.json")).json()
                         for name, (_, port) in self.processes.items() if name in SERVICES}
        upstreams = {name: f"127.0.0.1:{port}" for name, (_, port) in self.processes.items()}
        # nginx runs as an unprivileged user when started as root: its state folder sits directly in /tmp.
        self.gateway_state = Path(tempfile.mkdtemp(prefix="ksbb-portal-bench-gateway-"))
        self.gateway = LocalGateway(self.gateway_state, config=self.config,
                                    target_changes={"listen": self.gateway_listen, "upstreams": upstreams})
        self.gateway.prepare(documents)
        await asyncio.to_thread(self.gateway.start)

    @property
    def portal_direct(self) -> str:
        """The portal's own address (it runs with root path /portal, which the gateway strips, as here)."""
        return f"http://127.0.0.1:{self.processes['portal'][1]}"

    def stop(self) -> None:
        """Everything started, stopped."""
        if self.gateway is not None:
            self.gateway.stop()
            shutil.rmtree(self.gateway_state, ignore_errors=True)
        for process, _ in self.processes.values():
            process.terminate()
        for process, _ in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def client(self, role: str, **claims: Any) -> httpx.AsyncClient:
        """An API client through the gateway with a development token."""
        token = self.issuer.token(role, ttl_seconds=7200, **claims)
        return httpx.AsyncClient(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {token}"})


async def seed(platform: Platform, recipients: int, users: int) -> tuple[list[str], list[str]]:
    """An organisation, active recipients each with one open need, and pledges by every donor; (need ids,
    donor subjects)."""
    async with platform.client("admin", subject="bench-admin") as admin:
        org = (await admin.post("/v1/organisations", json={
            "name": "Yayasan Bench", "kind": "ngo", "area_codes": ["31.71", "31.72"],
            "contact": {"email": "bench@yayasan.example"}})).json()["organisation_id"]
    kelurahan = [a.code for a in areas().level("kelurahan") if a.code.startswith(("31.71.", "31.72."))]
    needs: list[str] = []
    async with platform.client("facilitator", org_id=org, subject="bench-staff") as staff:

        async def one(index: int) -> None:
            code = kelurahan[index % len(kelurahan)]
            made = await staff.post("/v1/recipients", json={
                "name": f"RW {index % 90 + 1:02d} {areas().kelurahan(code).name}", "kind": "rw_rentan",
                "organisation_id": org, "kelurahan_code": code, "rw": index % 90 + 1,
                "street_address": f"Jl. Bench No. {index}", "beneficiaries": {"households": 120, "people": 480},
                "contact": {"name": "Ibu Sari", "phone": "081234567890"}})
            if made.status_code != 201:
                raise SystemExit(f"seeding a recipient failed: {made.status_code} {made.text}")
            rid = made.json()["recipient_id"]
            for step in ("verify", "activate"):
                await staff.post(f"/v1/recipients/{rid}/{step}", json={"reason": "bench"})
            need = await staff.post(f"/v1/recipients/{rid}/needs", json={
                "item": "sembako", "quantity": 500, "priority": "high" if index % 3 == 0 else "medium",
                "needed_by": (date.today() + timedelta(days=20)).isoformat()})
            needs.append(need.json()["need_id"])

        for start in range(0, recipients, 10):
            await asyncio.gather(*(one(i) for i in range(start, min(start + 10, recipients))))
    async with httpx.AsyncClient(base_url=platform.url, timeout=10) as public:
        deadline = time.monotonic() + 120
        while True:
            shown = (await public.get("/v1/public/needs", params={"status": "open", "limit": 200})).json()
            ledgers = [await public.get(f"/v1/needs/{n}/ledger") for n in needs[-3:]]
            if len(shown["items"]) >= len(needs) and all(r.status_code == 200 for r in ledgers):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the seeded needs did not reach the publisher and the ledger in time")
            await asyncio.sleep(1)
    donors = [f"bench-donor-{i}" for i in range(users)]
    rng = random.Random(2020)

    async def pledges_of(subject: str) -> None:
        async with platform.client("donor", subject=subject) as donor:
            for need_id in rng.sample(needs, min(8, len(needs))):
                for _ in range(30):  # the ledger learns the recipient is active from an event
                    answer = await donor.post("/v1/pledges", json={
                        "need_id": need_id, "quantity": 2, "mode": "own_delivery",
                        "planned_date": (date.today() + timedelta(days=3)).isoformat()})
                    if answer.status_code == 201:
                        break
                    await asyncio.sleep(0.5)

    await asyncio.gather(*(pledges_of(s) for s in donors))
    return needs, donors


async def sessions(platform: Platform, donors: list[str]) -> list[str]:
    """A portal session per donor, made in the portal's own store; their cookie values."""
    store, client = SessionStore.connect(
        platform.env["KSBB_MONGODB_URL"], f"{platform.prefix.replace('.', '_')}ksbb_portal",
        secret=DEV_SECRET.encode(), idle=timedelta(hours=2), max_age=timedelta(hours=2))
    cookies = []
    try:
        for subject in donors:
            token = platform.issuer.token("donor", subject=subject, ttl_seconds=7200)
            tokens = Tokens(access_token=token, access_expires_at=now_utc() + timedelta(hours=2))
            cookies.append((await store.create(Person(subject, "donor", "Donatur Bench"), tokens, "id")).session_id)
    finally:
        await client.close()
    return cookies


async def ttfb(client: httpx.AsyncClient, url: str) -> float:
    """Milliseconds until the response headers arrived (the body is then read and dropped)."""
    started = time.perf_counter()
    async with client.stream("GET", url) as response:
        first = time.perf_counter()
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        await response.aread()
    return (first - started) * 1000


async def load(base: str, cookies: list[str], needs: list[str], seconds: float,
               think: tuple[float, float] | None = None) -> dict[str, list[float]]:
    """Every user loops over the three pages until the time is up, pausing `think` (random between the two
    bounds, seeded per user) after each page, or not at all (back to back); TTFB per page."""
    times: dict[str, list[float]] = {page: [] for page in PAGES}
    stop_at = time.monotonic() + seconds

    async def user(index: int, cookie: str) -> None:
        rng = random.Random(7 + index)
        if think:  # users arrive spread over one pause, not all in the same instant
            await asyncio.sleep(rng.uniform(0, think[1]))
        async with httpx.AsyncClient(cookies={"ksbb_portal": cookie}, timeout=30,
                                     headers={"Accept-Encoding": "gzip"}) as client:
            while time.monotonic() < stop_at:
                for page, path in (("needs list", "/needs"), ("pledge form", f"/needs/{rng.choice(needs)}/pledge"),
                                   ("my pledges", "/my/pledges")):
                    times[page].append(await ttfb(client, base + path))
                    if think:
                        await asyncio.sleep(rng.uniform(*think))
                    if time.monotonic() >= stop_at:
                        break

    await asyncio.gather(*(user(i, c) for i, c in enumerate(cookies)))
    return times


def summary(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Requests and p50/p95/p99 of the time to first byte per page."""
    return {page: {"requests": len(v), "p50_ms": round(statistics.median(v), 2),
                   "p95_ms": round(percentile(v, 0.95), 2), "p99_ms": round(percentile(v, 0.99), 2)}
            for page, v in times.items() if v}


async def api_load(url: str, users: int, seconds: float) -> list[float]:
    """The baseline: every user loops over one public API page (JSON) until the time is up; TTFB each."""
    times: list[float] = []
    stop_at = time.monotonic() + seconds

    async def user() -> None:
        async with httpx.AsyncClient(timeout=30, headers={"Accept-Encoding": "gzip"}) as client:
            while time.monotonic() < stop_at:
                times.append(await ttfb(client, url))

    await asyncio.gather(*(user() for _ in range(users)))
    return times


async def weight(base: str, origin: str, cookie: str, path: str) -> dict[str, int]:
    """Compressed bytes of a page's HTML and of each style sheet and script it loads, through the gateway."""
    import re

    sizes: dict[str, int] = {}
    async with httpx.AsyncClient(cookies={"ksbb_portal": cookie}, timeout=30,
                                 headers={"Accept-Encoding": "gzip"}) as client:
        async with client.stream("GET", base + path) as response:
            html = (await response.aread()).decode()
            sizes["html"] = response.num_bytes_downloaded
        for asset in re.findall(r'(?:href|src)="(/portal/static/[^"]+)"', html):
            async with client.stream("GET", origin + asset.replace("&amp;", "&")) as response:
                await response.aread()
                sizes[asset.split("/")[-1].split("?")[0]] = response.num_bytes_downloaded
    return sizes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (and its waited-for children) used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def settled(platform: Platform, *, share: float = 0.05, window: float = 2.0, limit: float = 240.0) -> float:
    """Wait until every process of the platform is idle (below `share` of a CPU over `window` seconds): the
    seed's events (notifications, projections) are handled before anything is measured. Seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        pids = [process.pid for process, _ in platform.processes.values()]
        before = [cpu_seconds(pid) for pid in pids]
        await asyncio.sleep(window)
        if all(cpu_seconds(pid) - used < share * window for pid, used in zip(pids, before, strict=True)):
            break
    return time.monotonic() - started


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its figures and (with --json) write its rows."""
    parser = bench_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    # 30 s of 20 users thinking 1–3 s is about 100 requests per page and way (the rows say how many): enough for a
    # p50; back to back, 10 s saturate the machine as well as 20 s did.
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each back-to-back phase")
    parser.add_argument("--think-seconds", type=float, default=30.0,
                        help="duration of each concurrent-users phase (users think 1–3 s between pages)")
    parser.add_argument("--recipients", type=int, default=40)
    parser.add_argument("--profile-portal", type=Path, help="run the portal under cProfile, writing stats here")
    args = parser.parse_args(argv)
    if args.tiny:
        args.users, args.seconds, args.think_seconds, args.recipients = 2, 2.0, 4.0, 3
    base_env = infra_env()
    state = Path(tempfile.mkdtemp(prefix="ksbb-portal-bench-"))
    platform = Platform(base_env, state, args.profile_portal)
    results: dict[str, Any] = {}
    try:
        print("starting the services, the portal and the gateway …", flush=True)
        began = time.monotonic()
        await platform.start()
        print(f"started in {time.monotonic() - began:.0f} s; seeding {args.recipients} recipients with needs and "
              f"{args.users} donors' pledges …", flush=True)
        seeding = time.monotonic()
        needs, donors = await seed(platform, args.recipients, args.users)
        cookies = await sessions(platform, donors)
        print(f"seeded in {time.monotonic() - seeding:.0f} s", flush=True)
        waited = await settled(platform)
        print(f"the platform was idle after {waited:.0f} s (the seed's events handled)", flush=True)
        pages = {"needs list": "/needs", "pledge form": f"/needs/{needs[0]}/pledge", "my pledges": "/my/pledges"}
        publisher_url = f"http://127.0.0.1:{platform.processes['publisher'][1]}/v1/public/needs?status=open&limit=50"
        measuring = time.monotonic()
        await api_load(publisher_url, 2, 1)  # warm up
        baseline_times = await api_load(publisher_url, args.users, args.seconds)
        phases = [(model, where, base, duration, think)
                  for model, duration, think in (("users", args.think_seconds, THINK_SECONDS),
                                                 ("saturation", args.seconds, None))
                  for where, base in (("portal", platform.portal_direct), ("gateway", f"{platform.url}/portal"))]
        for model, where, base, duration, think in phases:
            await load(base, cookies[:2], needs, 1)  # warm up connections and caches
            pids = {name: process.pid for name, (process, _) in platform.processes.items()}
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            load_before = os.getloadavg()[0]
            times = await load(base, cookies, needs, duration, think)
            served = sum(len(v) for v in times.values())
            results[f"{model}_{where}_cpu_ms_per_request"] = {
                name: round(1000 * (cpu_seconds(pid) - before[name]) / max(served, 1), 2) for name, pid in pids.items()}
            results[f"{model}_{where}"] = summary(times)
            results[f"{model}_{where}_load"] = round(max(load_before, os.getloadavg()[0]), 1)
            print(f"{model} phase {where}: {served} requests in {duration:.0f} s", flush=True)
        results["weight"] = {}
        for page, path in pages.items():
            sizes = await weight(f"{platform.url}/portal", platform.url, cookies[0], path)
            results["weight"][page] = {"bytes": sizes, "total_kb": round(sum(sizes.values()) / 1024, 1)}
        print(f"measured in {time.monotonic() - measuring:.0f} s", flush=True)
    finally:
        platform.stop()
        await drop_namespace(Infra(kafka_bootstrap=base_env["KSBB_KAFKA_BOOTSTRAP"],
                                   mongodb_url=base_env["KSBB_MONGODB_URL"], how="environment"), platform.prefix)
        shutil.rmtree(state, ignore_errors=True)
    models = {"users": f"{args.users} concurrent users thinking 1–3 s between pages (the goal's model)",
              "saturation": f"{args.users} users back to back (closed loop, saturation)"}
    print(f"\nPortal, goals: p50 ≤ {P50_GOAL_MS:.0f} ms at the portal under {args.users} concurrent users, "
          f"≤ {WEIGHT_GOAL_KB:.0f} KB compressed per page\n")
    for model, title in models.items():
        print(title)
        print(f"{'page':<13} {'where':<8} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        for where in ("portal", "gateway"):
            for page, figures in results[f"{model}_{where}"].items():
                print(f"{page:<13} {where:<8} {figures['requests']:>8} {figures['p50_ms']:>8.1f} "
                      f"{figures['p95_ms']:>8.1f} {figures['p99_ms']:>8.1f}")
            print(f"CPU ms per request ({where}): {results[f'{model}_{where}_cpu_ms_per_request']}; "
                  f"load average up to {results[f'{model}_{where}_load']}")
        print()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"\n{'page':<13} {'compressed KB (HTML + CSS + JS)':<34} parts (bytes)")
    for page, figures in results["weight"].items():
        print(f"{page:<13} {figures['total_kb']:<34} {figures['bytes']}")
    report = Results("portal")
    baseline_p50 = statistics.median(baseline_times)
    for model in models:
        for page, figures in results[f"{model}_portal"].items():
            through = results[f"{model}_gateway"].get(page, {})
            goal = model == "users"
            label = (f"{args.users} concurrent users (1–3 s think time)" if goal
                     else f"{args.users} users back to back (saturation)")
            report.add(Row(
                f"portal: {page} time to first byte p50, {label}", figures["p50_ms"], "ms",
                f"≤ {P50_GOAL_MS:.0f} ms" if goal else f"– (saturation; the goal is judged on {args.users} "
                "concurrent users)", round(baseline_p50, 2),
                f"ms p50 of the public API needs page (JSON, publisher) under {args.users} users back to back",
                round(ratio(figures["p50_ms"], baseline_p50, smaller_is_better=True), 2),
                figures["p50_ms"] <= P50_GOAL_MS if goal else None,
                f"p95 {figures['p95_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, {figures['requests']} requests "
                f"(load average up to {results[f'{model}_portal_load']}); through the gateway "
                f"p50 {through.get('p50_ms', 0):.1f} ms, p95 {through.get('p95_ms', 0):.1f} ms, "
                f"p99 {through.get('p99_ms', 0):.1f} ms",
            ))
    for page, figures in results["weight"].items():
        report.add(Row(
            f"portal: {page} page weight (HTML + CSS + JS, gzip)", figures["total_kb"], "KB",
            f"≤ {WEIGHT_GOAL_KB:.0f} KB", met=figures["total_kb"] <= WEIGHT_GOAL_KB,
            note="parts (bytes): " + ", ".join(f"{k} {v:,}" for k, v in figures["bytes"].items()),
        ))
    report.notes.append(
        f"Load models: \"concurrent users\" rows: each of {args.users} users loads a page, then thinks 1–3 s "
        f"(random, seeded) before the next, {args.think_seconds:.0f} s per phase — the goal's model; \"back to "
        f"back\" rows: each user asks again as soon as a page arrived (closed loop), {args.seconds:.0f} s per phase — "
        "saturation of the machine, informational. Every phase ran first straight to the portal, then through "
        f"the gateway. The baseline is {len(baseline_times)} requests back to back in {args.seconds:.0f} s.")
    for model in models:
        report.notes.append(f"CPU ms per request, {models[model]}, straight to the portal: " + ", ".join(
            f"{k} {v}" for k, v in results[f"{model}_portal_cpu_ms_per_request"].items()))
    report.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
