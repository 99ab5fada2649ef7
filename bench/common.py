"""What the benchmarks share: fresh infrastructure, result rows and plot series, CPU time of a process.

Every benchmark script prints its figures and, with `--json PATH`, writes them as result rows (path,
figure, baseline, ratio, goal) and plot series; `bench/run_all.py` (`make bench`) collects those files and
regenerates docs/performance.md. Figures are never asserted anywhere: they are measured and reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "deploy" / "local" / "infra"


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
            versus = f" (baseline {row.baseline:,.2f} {row.baseline_label}; ratio {row.ratio:.2f})"
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
