"""What the benchmarks share: fresh infrastructure, result rows and plot series, CPU time of a process.

Every benchmark script prints its figures and, with `--json PATH`, writes them as result rows (path,
figure, baseline, ratio, goal) and plot series; `bench/run_all.py` (`make bench`) collects those files and
regenerates docs/performance.md. Figures are never asserted anywhere: they are measured and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "deploy" / "local" / "infra"
#: The four services, in the order they start.
SERVICES = ("registry", "pledges", "notifier", "publisher")
#: A started service: its process and its base URL.
Processes = dict[str, tuple[subprocess.Popen[bytes], str]]


@dataclass
class Row:
    """One line of the performance table: a figure next to the baseline measured in the same run."""

    path: str
    figure: float
    unit: str
    goal: str
    baseline: float | None = None
    baseline_label: str = ""
    #: figure / baseline, or baseline / figure when smaller is better (so a higher ratio is always better)
    ratio: float | None = None
    met: bool | None = None
    note: str = ""


@dataclass
class Series:
    """Points of a scaling plot (x against y), drawn as one line."""

    plot: str
    label: str
    x_label: str
    y_label: str
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Results:
    """Everything one benchmark run reports."""

    benchmark: str
    rows: list[Row] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        """Record and print a row."""
        self.rows.append(row)
        versus = ""
        if row.baseline is not None:
            compared = "–" if row.ratio is None else f"{row.ratio:.2f}"
            versus = f" (baseline {row.baseline:,.2f} {row.baseline_label}; ratio {compared})"
        print(f"[{self.benchmark}] {row.path}: {row.figure:,.2f} {row.unit}{versus}; goal {row.goal}", flush=True)
        return row

    def write(self, path: str | None) -> None:
        """Write the results as JSON for the report (nothing without a path)."""
        if not path:
            return
        Path(path).write_text(json.dumps(asdict(self), indent=1, default=str))


def ratio(figure: float, baseline: float, *, smaller_is_better: bool = False) -> float:
    """How the figure compares with its baseline, oriented so that higher is better."""
    if smaller_is_better:
        return baseline / figure if figure else float("inf")
    return figure / baseline if baseline else float("inf")


def bench_arguments(description: str | None) -> argparse.ArgumentParser:
    """The arguments every benchmark understands (`--json`, `--tiny`)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the result rows and plot series to this file")
    parser.add_argument("--tiny", action="store_true", help="the smallest sizes: proves the benchmark runs")
    return parser


def infra_env() -> dict[str, str]:
    """Where Kafka and the database server are: the environment, else the default local infrastructure."""
    kafka, mongo = os.environ.get("KSBB_KAFKA_BOOTSTRAP"), os.environ.get("KSBB_MONGODB_URL")
    if kafka and mongo:
        return {"KSBB_KAFKA_BOOTSTRAP": kafka, "KSBB_MONGODB_URL": mongo}
    env_file = infra_dir() / "infra.env"
    if not env_file.exists():
        raise SystemExit("no infrastructure: export KSBB_KAFKA_BOOTSTRAP/KSBB_MONGODB_URL or run deploy/local/infra up")
    values = dict(
        line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    return {k: values[k] for k in ("KSBB_KAFKA_BOOTSTRAP", "KSBB_MONGODB_URL")}


def infra_dir() -> Path:
    """The state folder of the local infrastructure in use."""
    return Path(os.environ.get("KSBB_INFRA_DIR", ROOT / ".ksbb" / "infra"))


def infra_pid(component: str) -> int | None:
    """The process id of a local infrastructure component (mongo, kafka): from the pid file `deploy/local/infra`
    writes, else the local process listening on the component's port (from the environment)."""
    pidfile = infra_dir() / "run" / f"{component}.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text().strip())
        if Path(f"/proc/{pid}").exists():
            return pid
    address = infra_env()["KSBB_MONGODB_URL" if component == "mongo" else "KSBB_KAFKA_BOOTSTRAP"]
    port = int(address.rstrip("/").rsplit(":", 1)[1].split("/")[0].split(",")[0])
    return listening_pid(port)


def listening_pid(port: int) -> int | None:
    """The local process that listens on a TCP port (Linux /proc), if this user may see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(proc.name)
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int | None = None) -> float:
    """Resident set size of a process (this one by default) in MiB."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    """A localhost TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    """A local SMTP server (aiosmtpd, its own process) that accepts every e-mail and keeps none; its port.

    A deployment has a mail server: without one every e-mail the notifier sends fails and is retried, work
    a real stack does not do.
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the SMTP sink did not start on port {port} (exit {process.poll()})")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def fresh_infra(name: str, *, backend: str = "memory", heap: str = "1g") -> Iterator[dict[str, str]]:
    """A new Kafka + database server of our own (own state folder and ports), wiped and stopped afterwards.

    Yields the environment a benchmark runs with (the infra env plus `KSBB_INFRA_DIR`, so it finds the pids).
    """
    state = Path(tempfile.mkdtemp(prefix=f"ksbb-bench-{name}-"))
    ports = {
        "KSBB_KAFKA_PORT": free_port(), "KSBB_KAFKA_CONTROLLER_PORT": free_port(), "KSBB_MONGO_PORT": free_port(),
        "KSBB_KEYCLOAK_PORT": free_port(), "KSBB_KEYCLOAK_MANAGEMENT_PORT": free_port(),
        "KSBB_MAILPIT_SMTP_PORT": free_port(), "KSBB_MAILPIT_HTTP_PORT": free_port(),
    }
    env = {
        **os.environ, **{k: str(v) for k, v in ports.items()},
        "KSBB_INFRA_DIR": str(state), "KSBB_INFRA_KEYCLOAK": "0", "KSBB_INFRA_MAILPIT": "0",
        "KSBB_MONGO_BACKEND": backend, "KSBB_MONGO_HEAP": heap, "KSBB_KAFKA_HEAP": heap,
    }
    for key in ("KSBB_KAFKA_BOOTSTRAP", "KSBB_MONGODB_URL"):
        env.pop(key, None)
    started = time.perf_counter()
    subprocess.run([str(INFRA), "up"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        values = dict(
            line.split("=", 1) for line in (state / "infra.env").read_text().splitlines() if "=" in line
        )
        env.update({k: values[k] for k in ("KSBB_KAFKA_BOOTSTRAP", "KSBB_MONGODB_URL")})
        print(f"[{name}] fresh infrastructure in {state} ready after {time.perf_counter() - started:.0f}s",
              file=sys.stderr, flush=True)
        yield env
    finally:
        subprocess.run([str(INFRA), "down", "--wipe"], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(state, ignore_errors=True)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of the values, nearest rank (0.0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def service_env(base: Mapping[str, str], issuer: Any, prefix: str) -> dict[str, str]:
    """The environment of every service process: development settings, the dev issuer (a
    `ksbb_kit.auth.DevIssuer`), the infrastructure of `base` and a fresh topic/database namespace."""
    return {
        **os.environ, **base,
        "KSBB_ENV": "development", "KSBB_DEV_ISSUER_ENABLED": "true", "KSBB_JWKS_URL": str(issuer.jwks_path),
        "KSBB_JWT_ISSUER": issuer.issuer, "KSBB_JWT_AUDIENCE": issuer.audience, "KSBB_TOPIC_PREFIX": prefix,
        "KSBB_LOG_LEVEL": "WARNING", "KSBB_NOTIFIER_INSECURE_HTTP_HOSTS": '["127.0.0.1","localhost"]',
    }


@contextlib.contextmanager
def started_services(env: Mapping[str, str], logs: Path, names: tuple[str, ...] = SERVICES) -> Iterator[Processes]:
    """The services as separate processes (their production entry points) on free ports; stopped on exit."""
    processes: Processes = {}
    try:
        for name in names:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log = (logs / f"{name}.log").open("ab")
            process = subprocess.Popen(
                [sys.executable, "-m", f"ksbb_{name}.main"],
                env={**env, f"KSBB_{name.upper()}_HTTP_PORT": str(port), f"KSBB_{name.upper()}_PUBLIC_URL": url},
                stdout=log, stderr=subprocess.STDOUT,
            )
            processes[name] = (process, url)
        yield processes
    finally:
        for process, _ in processes.values():
            process.terminate()
        for process, _ in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_ready(processes: Processes, logs: Path, within: float = 120) -> None:
    """Until every service answers /readyz with 200 (fails with the log's name when one exits or stalls)."""
    import httpx

    async with httpx.AsyncClient(timeout=3) as client:
        for name, (process, url) in processes.items():
            deadline = time.monotonic() + within
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"{name} exited; see {logs / (name + '.log')}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} not ready after {within:.0f} s; see {logs / (name + '.log')}")
                await asyncio.sleep(0.5)


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of one Prometheus metric in a /metrics page."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


async def cpu_share(pid: int, seconds: float) -> float:
    """Percent of one core the process used over the next `seconds`."""
    before, started_at = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / (time.monotonic() - started_at)


class RssSampler:
    """Samples the RSS of processes in the background; `peaks` are the loaded figures (MiB)."""

    def __init__(self, pids: Mapping[str, int], every: float = 0.5) -> None:
        self.pids = dict(pids)
        self.every = every
        self.peaks = dict.fromkeys(self.pids, 0.0)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError):
                    self.peaks[name] = max(self.peaks[name], rss_mib(pid))
            await asyncio.sleep(self.every)

    def start(self) -> None:
        """Begin sampling (from a running event loop)."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, float]:
        """Stop; the peak RSS per process in MiB."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.peaks


#: How py-spy names a frame's file (relative to its sys.path entry): the first part names the package.
_OWN_CODE = "ksbb_"


def _frame_package(frame: str) -> str | None:
    """The package of one py-spy frame `function (package/module.py:line)`; None for the standard library."""
    location = frame.rsplit("(", 1)[-1]
    top = location.split("/", 1)[0]
    if "/" not in location or top in sys.stdlib_module_names or location.startswith(("<", "/")):
        return None
    return "own code" if top.startswith(_OWN_CODE) else top


def summarise_profile(raw: str, *, top: int = 7) -> str:
    """Where sampled CPU time went, by package: each sample is counted for the innermost non-stdlib frame."""
    shares: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        package = next((p for p in map(_frame_package, reversed(frames)) if p), None)
        if package is None:
            leaf = frames[-1].rsplit("(", 1)[-1]
            package = "stdlib " + leaf.split("/", 1)[0].split(".py", 1)[0].split(":", 1)[0].rstrip(")")
        shares[package] = shares.get(package, 0) + int(count)
        total += int(count)
    if not total:
        return "no samples (the process was idle)"
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    parts = [f"{name} {100 * n / total:.0f} %" for name, n in ranked[:top]]
    rest = sum(n for _, n in ranked[top:])
    if rest:
        parts.append(f"other {100 * rest / total:.0f} %")
    return f"{total} samples: " + ", ".join(parts)


async def sampled_profiles(pids: Mapping[str, int], seconds: float, *, rate: int = 97) -> dict[str, str]:
    """Sample where each process spends its CPU for `seconds` (py-spy, not stopping it); one summary each.

    Idle threads (waiting for I/O) are not sampled, so the shares are of the CPU the process used; the
    sampler itself costs a few percent of a core while it runs.
    """
    return {name: summarise_profile(raw) if raw is not None else f"not sampled ({why})"
            for name, (raw, why) in (await _py_spy_record(pids, seconds, rate)).items()}


async def _py_spy_record(pids: Mapping[str, int], seconds: float, rate: int) -> dict[str, tuple[str | None, str]]:
    """py-spy's raw samples of each process at once (`stack;frames count` lines), or None and why not."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="ksbb-profile-") as folder:
        runs = {}
        for name, pid in pids.items():
            output = Path(folder) / f"{name}.txt"
            runs[name] = (output, await asyncio.create_subprocess_exec(
                spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
                "--format", "raw", "--nonblocking", "--output", str(output),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE))
        recorded: dict[str, tuple[str | None, str]] = {}
        for name, (output, process) in runs.items():
            _, error = await process.communicate()
            recorded[name] = (output.read_text(), "") if output.exists() else (
                None, f"py-spy exit {process.returncode}: {error.decode().strip()[-200:]}")
        return recorded


def machine() -> str:
    """A short description of this machine: cores, memory, CPU model."""
    cores = os.cpu_count() or 0
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0.0
    with contextlib.suppress(OSError, ValueError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{cores} cores, {memory:.0f} GiB{', ' + model if model else ''}"


def describe(results: Results) -> dict[str, Any]:
    """The results as plain data."""
    return asdict(results)


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU time each thread of a process has used so far, summed per thread name (Linux
    /proc/<pid>/task; names are cut to 15 characters by the kernel, digits are kept so callers may group)."""
    used: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            head, _, tail = (task / "stat").read_text().rpartition(")")
            name = head.split("(", 1)[1]
            fields = tail.split()
            used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return used


async def recorded_profiles(pids: Mapping[str, int], seconds: float, *, rate: int = 97) -> dict[str, str]:
    """Like `sampled_profiles`, but the raw py-spy samples of each process (`stack;frames count` lines), for
    callers that summarise them differently; an empty string when a process could not be sampled."""
    return {name: raw or "" for name, (raw, _) in (await _py_spy_record(pids, seconds, rate)).items()}


def summarise_tasks(raw: str, *, top: int = 5) -> str:
    """Where sampled CPU time went, by asyncio task: each sample is counted for the coroutine its task runs
    (the frame above the event loop's `Runner.run`, past our runtime's job wrappers), e.g. a Kafka client's
    heartbeat, a poll job of ours; samples in the event loop itself (uvloop, C) count as `event loop`."""
    shares: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        loop = max((i for i, frame in enumerate(frames) if frame.startswith("Runner.run (asyncio/")), default=None)
        task = "event loop" if loop is not None else "outside the event loop"
        if loop is not None:
            above = [f for f in frames[loop + 1 :] if "(ksbb_kit/runtime.py:" not in f] or frames[loop + 1 :]
            if above:
                function, _, location = above[0].rpartition(" (")
                task = f"{function} ({location.split(':', 1)[0]})"
        shares[task] = shares.get(task, 0) + int(count)
        total += int(count)
    if not total:
        return "no samples (the process was idle)"
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    parts = [f"{name} {100 * n / total:.0f} %" for name, n in ranked[:top]]
    rest = sum(n for _, n in ranked[top:])
    if rest:
        parts.append(f"other {100 * rest / total:.0f} %")
    return f"{total} samples: " + ", ".join(parts)
