"""Idle benchmark: CPU the database server burns while the whole stack has nothing to do.

    uv run --no-sync python bench/idle_bench.py               # against the infrastructure in the environment
    uv run --no-sync python bench/idle_bench.py --no-profile  # the same without the samplers (A/B)

1. Measures the database server's CPU with no service connected (the baseline);
2. starts the four services (each its own process, on free ports, in a fresh namespace), seeds the demo
   data through their HTTP APIs (as `make run` does; the demo's webhook endpoint is a local receiver that
   accepts every delivery) and waits until every consumer group has caught up, every outbox is empty and
   no webhook delivery is pending;
3. adds history: `--history` copies of every document the seeds left (finished, with nothing pending or
   due, a week older, under new ids), as a stack that has run for a while has — a few thousand documents
   per collection (fewer seeded recipients and more copies: copying is much faster than seeding);
4. observes the database server's CPU (from /proc/<pid>/stat of its Java process) for 90 s from the moment
   everything (history included) has caught up, in parts of 10 s, and reports what the goal states ("the
   stack returns to idle, database server under 5 % of a core, within a minute of the consumers catching
   up"): (a) the seconds until the server stays under 5 % of a core for the rest of the observation (goal
   <= 60 s) and (b) its CPU once back to idle, 60-90 s after catching up (goal < 5 %);
5. profiles what the server does meanwhile: its CPU per thread group in every part (/proc/<pid>/task: the
   wire server's workers answering commands, h2 MVStore's background writer, the JIT compiler, the garbage
   collector), summed by kind of work for the parts over and under the goal, and a Java Flight Recorder
   recording (`jcmd JFR.start` with only execution samples and JIT compilations, started before the seed so
   its own start-up is not measured): compilations by package (the longest named, with how often the JVM
   had compiled that method) and samples by part of the server and by wire command; and the services' own
   idle CPU (py-spy, by package and by asyncio task). `--no-profile` measures without any of the samplers.

Periodic work that scans a collection (a sweep, a poll, a relay pass) costs CPU in proportion to what the
stack has ever stored, so this figure is where a scan that grows with history shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from common import (
    SERVICES,
    Processes,
    Results,
    Row,
    bench_arguments,
    cpu_seconds,
    cpu_share,
    infra_env,
    infra_pid,
    metric_sum,
    ratio,
    recorded_profiles,
    rss_mib,
    service_env,
    started_services,
    summarise_profile,
    summarise_tasks,
    thread_cpu_seconds,
    wait_ready,
)
from ksbb_kit.auth import DevIssuer
from ksbb_kit.demo import DemoContext
from ksbb_kit.mongo import connect
from pymongo.errors import BulkWriteError

GOAL_PERCENT = 5.0
#: The goal's "within a minute of the consumers catching up".
GOAL_SECONDS = 60.0
#: Collections that hold no history: bookkeeping of pending work, counters, snapshots.
NOT_HISTORY = {"feed_sequence", "snapshots", "snapshot_chunks", "dead_letter_payloads", "report_rate",
               "delivery_due", "email_due", "sweep_due", "idempotency_expiry"}
#: How much older the history copies are than what the seeds wrote.
HISTORY_AGE = timedelta(days=7)


#: Java Flight Recorder, only what says where the server's CPU goes: execution samples (a running Java thread
#: every 20 ms) and every JIT compilation (the compiler threads are not Java threads, so samples miss them).
JFR_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<configuration version="2.0" label="ksbb idle">
  <event name="jdk.ExecutionSample">
    <setting name="enabled">true</setting>
    <setting name="period">20 ms</setting>
  </event>
  <event name="jdk.Compilation">
    <setting name="enabled">true</setting>
    <setting name="threshold">0 ms</setting>
  </event>
</configuration>
"""
#: Thread groups of the database server by their (kernel, 15-character) name: what each group does.
THREAD_GROUPS = (
    ("mongo-server-wo", "wire server workers (answering commands)"),
    ("nioEventLoop", "wire server network (netty)"), ("H2-serializatio", "h2 serialization"),
    ("MVStore", "h2 MVStore background writer (commits, compaction)"),
    ("C2 Compiler", "JIT compiler"), ("C1 Compiler", "JIT compiler"),
    ("GC Thread", "garbage collector"), ("G1 ", "garbage collector"), ("VM Thread", "JVM safepoints"),
    ("JFR", "flight recorder (this benchmark's sampler)"), ("Attach", "flight recorder (this benchmark's sampler)"),
)
#: Java frames that are plumbing, not the work: the innermost frame outside them names what a sample does.
PLUMBING = ("java.", "jdk.", "sun.", "io.netty.", "org.slf4j.")


def thread_group(name: str) -> str:
    """What a thread of the database server does, from its name."""
    return next((group for prefix, group in THREAD_GROUPS if name.startswith(prefix)),
                re.sub(r"[-#\d]+$", "", name) or name)


def grouped(used: dict[str, float]) -> dict[str, float]:
    """CPU seconds per thread group."""
    groups: dict[str, float] = {}
    for name, seconds in used.items():
        groups[thread_group(name)] = groups.get(thread_group(name), 0.0) + seconds
    return groups


def work_kind(group: str) -> str:
    """The kind of work a thread group does: the JVM's housekeeping, the storage engine, or the commands."""
    if group in ("JIT compiler", "garbage collector", "JVM safepoints"):
        return f"{group} (JVM)"
    if group.startswith(("h2", "H2")):
        return "h2 storage (background writer, serialization, saving)"
    if group.startswith("wire server"):
        return "answering the services' commands"
    if group.startswith("flight recorder"):
        return group
    return "other JVM threads"


def jcmd(pid: int, *command: str) -> str:
    """Run one jcmd diagnostic command in the server's JVM; its output (raises with the output on failure)."""
    done = subprocess.run(["jcmd", str(pid), *command], capture_output=True, text=True, timeout=60)
    if done.returncode or "error" in done.stdout.lower() or "exception" in done.stdout.lower():
        raise RuntimeError((done.stdout + done.stderr).strip()[-300:])
    return done.stdout


#: One event of the recording: (wall-clock time, thread name or compiler, `package.Class.method` frames innermost
#: first (for a compilation: the compiled method, its tier and how many times the JVM has compiled that method so
#: far, this one included), seconds it took (compilations; 0 for samples)).
Event = tuple[float, str, list[str], float]


def java_name(method: dict[str, Any]) -> str:
    """`package.Class.method` of a method in a flight recording."""
    return f"{method['type']['name'].replace('/', '.')}.{method['name']}"


def iso_seconds(duration: str) -> float:
    """Seconds of an ISO-8601 duration as the recorder prints it (`PT0.0123S`, `PT1M2.5S`)."""
    found = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", duration)
    if not found:
        return 0.0
    hours, minutes, seconds = (float(part or 0) for part in found.groups())
    return 3600 * hours + 60 * minutes + seconds


class ServerRecording:
    """A flight recording of the database server (started and dumped with jcmd); errors are kept, not raised."""

    NAME = "ksbb-idle"

    def __init__(self, pid: int, folder: Path) -> None:
        self.pid = pid
        self.folder = folder
        self.file = folder / "database-server.jfr"
        self.error = ""

    def start(self) -> None:
        """Start recording (long before the clock: the recorder's own start-up is not what is measured)."""
        settings = self.folder / "idle-profile.jfc"
        settings.write_text(JFR_SETTINGS)
        try:
            # Deeper stacks than the default 64 frames, so a sample still shows the command it serves (only
            # possible before the recorder's first start in this JVM, hence no error when it is refused).
            with contextlib.suppress(RuntimeError):
                jcmd(self.pid, "JFR.configure", "stackdepth=128")
            jcmd(self.pid, "JFR.start", f"name={self.NAME}", f"settings={settings}")
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def discard(self) -> None:
        """Stop the recording without reading it (the benchmark failed): nothing stays running in the server."""
        if not self.error:
            with contextlib.suppress(OSError, RuntimeError, subprocess.SubprocessError):
                jcmd(self.pid, "JFR.stop", f"name={self.NAME}")
            self.error = "the benchmark stopped before the recording was read"

    def stop(self, since: float) -> tuple[list[Event], list[Event]]:
        """Keep what was recorded from `since` (wall clock) on, stop, and read it: (samples, compilations)."""
        if self.error:
            return [], []
        begin = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            jcmd(self.pid, "JFR.dump", f"name={self.NAME}", f"begin={begin}", f"filename={self.file}")
            jcmd(self.pid, "JFR.stop", f"name={self.NAME}")
            printed = subprocess.run(
                ["jfr", "print", "--json", "--stack-depth", "128", "--events", "jdk.ExecutionSample,jdk.Compilation",
                 str(self.file)],
                capture_output=True, text=True, timeout=300, check=True).stdout
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return [], []
        samples: list[Event] = []
        compilations: list[Event] = []
        compiled: dict[str, int] = {}  # compilations of each method so far (recompiles show as repeats)
        events = [(datetime.fromisoformat(event["values"]["startTime"].replace("Z", "+00:00")).timestamp(), event)
                  for event in json.loads(printed)["recording"]["events"]]
        for at, event in sorted(events, key=lambda item: item[0]):
            values = event["values"]
            if event["type"] == "jdk.Compilation":
                method = java_name(values["method"])
                compiled[method] = compiled.get(method, 0) + 1
                if at >= since:
                    compilations.append((at, values.get("compiler") or "?",
                                         [method, str(values.get("compileLevel", "?")), str(compiled[method])],
                                         iso_seconds(values.get("duration") or "")))
                continue
            if at >= since:
                thread = (values.get("sampledThread") or {}).get("javaName") or "?"
                frames = [java_name(frame["method"])
                          for frame in ((values.get("stackTrace") or {}).get("frames") or [])]
                samples.append((at, thread, frames, 0.0))
        return samples, compilations


def sample_work(frames: list[str]) -> str:
    """What one execution sample does: the innermost frame outside the JDK and netty, shortened to
    `package.Class.method` with the package cut to its last part."""
    frame = next((f for f in frames if not f.startswith(PLUMBING)), frames[0] if frames else "?")
    klass, _, method = frame.rpartition(".")
    package, _, name = klass.rpartition(".")
    return f"{package.rsplit('.', 1)[-1]}.{name}.{method}" if package else frame


def sample_component(frames: list[str]) -> str:
    """Which part of the server a sample is in: h2 MVStore, the Mongo wire server, BSON, netty, the JDK."""
    for frame in frames:
        for prefix, component in (("org.h2.mvstore", "h2 MVStore"), ("org.h2", "h2"),
                                  ("de.bwaldvogel.mongo.backend.h2", "wire server's h2 backend"),
                                  ("de.bwaldvogel.mongo", "wire server"), ("org.bson", "BSON")):
            if frame.startswith(prefix):
                return component
    return "netty / JDK" if frames else "?"


def sample_command(frames: list[str], thread: str) -> str:
    """Which wire command a sample serves (the handler under the database's command dispatch, e.g. `find`,
    `insert`, `findAndModify`), else the thread group's work (background writer, serialization)."""
    for inner, frame in itertools.pairwise(frames):
        if frame.endswith("AbstractMongoDatabase.handleCommand"):
            handler = inner.rsplit(".", 1)[-1]
            return handler.removeprefix("command")[:1].lower() + handler.removeprefix("command")[1:]
    return thread_group(thread)


def ranked(counts: dict[str, int], top: int) -> str:
    """`name share %` for the largest counts, the rest as `other`."""
    total = sum(counts.values())
    if not total:
        return "none"
    order = sorted(((name, n) for name, n in counts.items() if n), key=lambda item: -item[1])
    parts = [f"{name} {100 * n / total:.0f} %" for name, n in order[:top]]
    rest = sum(n for _, n in order[top:])
    return ", ".join(parts + ([f"other {100 * rest / total:.0f} %"] if rest else []))


def summarise_samples(samples: list[Event], start: float, end: float) -> str:
    """The execution samples between two wall-clock times, by component, by thread and by innermost work."""
    chosen = [(thread, frames) for at, thread, frames, _ in samples if start <= at < end]
    if not chosen:
        return "no execution samples (no Java thread was running)"
    components: dict[str, int] = {}
    threads: dict[str, int] = {}
    work: dict[str, int] = {}
    commands: dict[str, int] = {}
    for thread, frames in chosen:
        commands[sample_command(frames, thread)] = commands.get(sample_command(frames, thread), 0) + 1
        components[sample_component(frames)] = components.get(sample_component(frames), 0) + 1
        threads[thread_group(thread)] = threads.get(thread_group(thread), 0) + 1
        work[sample_work(frames)] = work.get(sample_work(frames), 0) + 1
    return (f"{len(chosen)} sample{'s' if len(chosen) > 1 else ''}; by part of the server: {ranked(components, 5)};"
            f" by thread: {ranked(threads, 4)}; by command served: {ranked(commands, 5)}; innermost work: "
            f"{ranked(work, 5)}")


def summarise_compilations(compilations: list[Event], start: float, end: float) -> str:
    """The JIT compilations between two wall-clock times: how many, compiler time, whose code (by package)."""
    chosen = [(compiler, frames[0], took) for at, compiler, frames, took in compilations if start <= at < end]
    if not chosen:
        return "no JIT compilation"
    by_compiler: dict[str, int] = {}
    by_package: dict[str, int] = {}
    for compiler, method, took in chosen:
        by_compiler[compiler] = by_compiler.get(compiler, 0) + round(took * 1e6)
        package = ".".join(method.split(".")[:-2][:3]) or method
        by_package[package] = by_package.get(package, 0) + round(took * 1e6)
    total = sum(took for _, _, took in chosen)
    longest = sorted(((took, frames) for at, _, frames, took in compilations if start <= at < end),
                     key=lambda item: -item[0])[:3]
    return (f"{len(chosen)} JIT compilations taking {total:.1f} s of compiler time (by compiler: "
            f"{ranked(by_compiler, 3)}; compiled code by package, share of compiler time: {ranked(by_package, 5)}; "
            "longest: " + ", ".join(f"{frames[0]} {took:.2f} s (tier {frames[1]}, compilation no. {frames[2]} of "
                                    "that method in this JVM)" for took, frames in longest) + ")")

class Receiver(BaseHTTPRequestHandler):
    """A healthy NGO endpoint: every webhook delivery is accepted (so none stays pending, retrying)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        """Quiet."""


@contextlib.contextmanager
def webhook_receiver() -> Iterator[str]:
    """A local receiver for the demo's webhook endpoint; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ksbb-webhooks"
    finally:
        server.shutdown()


def as_history(collection: str, document: dict[str, Any], copy: int, position: int) -> dict[str, Any]:
    """A finished copy of a document, a week older: a new id, nothing pending, nothing due, no unique value
    repeated (history is old: recent-changes windows of the sweeps do not include it)."""
    old = {name: value - HISTORY_AGE if isinstance(value, datetime) else value for name, value in document.items()}
    old["_id"] = f"hist{copy}_{document['_id']}"
    for name in ("_outbox", "_outbox_lease", "_rev", "series_next_at", "pending_need_closure", "leased_until",
                 "lease_token"):
        old.pop(name, None)
    if "_outbox_pending" in old:
        old["_outbox_pending"] = False
    if collection == "ledgers":
        old.update(pledges=[], leaving=[])
    elif collection == "deliveries":
        old["status"] = "succeeded"
    elif collection == "emails":
        old["status"] = "sent"
    elif collection == "claims":
        old["confirmed"] = True
    elif collection == "feed":
        old["seq"] = -(copy * 1_000_000 + position + 1)  # below every live number: never announced
    return old


async def add_history(mongodb_url: str, prefix: str, copies: int) -> int:
    """Copy every document of every service database `copies` times as finished history; returns how many."""
    client = connect(mongodb_url)
    added = 0
    try:
        for service in SERVICES:
            db = client[f"{prefix.replace('.', '_')}ksbb_{service}"]
            for name in await db.list_collection_names():
                if name.startswith(("_", "system.")) or name in NOT_HISTORY:
                    continue
                documents = [d async for d in db[name].find({})]
                clones = [as_history(name, d, c, i) for c in range(copies) for i, d in enumerate(documents)]
                for start in range(0, len(clones), 2000):
                    try:
                        added += len((await db[name].insert_many(clones[start : start + 2000], ordered=False))
                                     .inserted_ids)
                    except BulkWriteError as exc:  # a unique value the copy still repeats: that copy is left out
                        added += len(clones[start : start + 2000]) - len(exc.details.get("writeErrors", []))
    finally:
        await client.close()
    return added


async def collection_sizes(mongodb_url: str, prefix: str) -> list[tuple[str, int]]:
    """Documents per collection of every service database, largest first (`service.collection`)."""
    client = connect(mongodb_url)
    try:
        sizes = []
        for service in SERVICES:
            db = client[f"{prefix.replace('.', '_')}ksbb_{service}"]
            for name in await db.list_collection_names():
                if not name.startswith(("_", "system.")):
                    sizes.append((f"{service}.{name}", await db[name].count_documents({})))
        return sorted(sizes, key=lambda item: -item[1])
    finally:
        await client.close()


async def caught_up(processes: Processes, mongodb_url: str, prefix: str) -> bool:
    """Every consumer group has committed everything, every outbox is empty, no webhook is still pending."""
    async with httpx.AsyncClient(timeout=10) as client:
        for _, url in processes.values():
            text = (await client.get(f"{url}/metrics")).text
            if metric_sum(text, "ksbb_consumer_lag_records") or metric_sum(text, "ksbb_outbox_backlog_documents"):
                return False
    mongo = connect(mongodb_url)
    try:
        notifier = mongo[f"{prefix.replace('.', '_')}ksbb_notifier"]
        return not await notifier.deliveries.count_documents({"status": "pending"})
    finally:
        await mongo.close()


async def main() -> None:
    """Run the benchmark and print (and optionally write) the figures."""
    parser = bench_arguments(__doc__)
    parser.add_argument("--window", type=float, default=90.0, help="seconds observed after catching up")
    parser.add_argument("--part", type=float, default=10.0, help="seconds per part of the observation")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds after catching up before observing")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of the no-service measurement")
    parser.add_argument("--recipients", type=int, default=100, help="recipients the registry demo seeds")
    parser.add_argument("--seeds", default=",".join(SERVICES), help="services whose demo seed runs, in order")
    parser.add_argument("--history", type=int, default=30, help="copies of the seeded documents added as history")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                        help="profile the database server (flight recorder) and the services (py-spy) meanwhile")
    args = parser.parse_args()
    if args.tiny:
        args.window, args.part, args.baseline, args.recipients, args.seeds, args.history = 2.0, 1.0, 0.5, 3, \
            "registry", 1
    parts = max(1, round(args.window / args.part))
    results = Results("idle")
    base = infra_env()
    mongo_pid = infra_pid("mongo")
    if mongo_pid is None:
        raise SystemExit("the database server's process was not found (set KSBB_INFRA_DIR to the infra state folder)")
    # The database server with nothing connected is steady: a few seconds show its floor.
    baseline = await cpu_share(mongo_pid, args.baseline)
    print(f"database server CPU with no service connected: {baseline:.2f} % of a core", flush=True)

    prefix = f"idle{uuid.uuid4().hex[:6]}."
    logs = Path(tempfile.mkdtemp(prefix="ksbb-idle-logs-"))
    print(f"service logs and the server's flight recording in {logs}", flush=True)
    recording = ServerRecording(mongo_pid, logs)
    try:
        with tempfile.TemporaryDirectory(prefix="ksbb-idle-") as tmp, webhook_receiver() as receiver:
            os.environ["KSBB_DEMO_WEBHOOK_URL"] = receiver  # the notifier demo's endpoint answers (nothing retries)
            issuer = DevIssuer(Path(tmp) / "issuer")
            with started_services(service_env(base, issuer, prefix), logs) as processes:
                await wait_ready(processes, logs)
                # The recorder starts long before the clock: its own start-up (attach, loading and compiling its code)
                # is over before anything is measured.
                if args.profile:
                    await asyncio.to_thread(recording.start)
                else:
                    recording.error = "not profiled in this run (--no-profile)"
                if recording.error:
                    print(f"the server's flight recording did not start ({recording.error}); measuring anyway")
                ctx = DemoContext(urls={name: url for name, (_, url) in processes.items()}, issuer=issuer)
                seeded = time.monotonic()
                for name in args.seeds.split(","):
                    module = importlib.import_module(f"ksbb_{name}.demo")
                    try:
                        if name == "registry":
                            await module.seed(ctx, recipients_wanted=args.recipients)
                        else:
                            await module.seed(ctx)
                    except Exception as exc:  # what was seeded still counts: the figure is about idling with data
                        print(f"the {name} demo seed stopped early ({type(exc).__name__}: {exc}); measuring anyway")
                print(f"demo seeded in {time.monotonic() - seeded:.0f}s", flush=True)
                waited = time.monotonic()
                while not await caught_up(processes, base["KSBB_MONGODB_URL"], prefix):
                    if time.monotonic() - waited > 600:
                        raise SystemExit("the stack did not catch up within 10 minutes")
                    await asyncio.sleep(1)
                print(f"caught up {time.monotonic() - waited:.0f}s after the seed", flush=True)
                copied = time.monotonic()
                history = await add_history(base["KSBB_MONGODB_URL"], prefix, args.history)
                sizes = await collection_sizes(base["KSBB_MONGODB_URL"], prefix)
                print(f"added {history:,} documents of history ({args.history} copies of what the seeds left) in "
                      f"{time.monotonic() - copied:.0f}s; largest collections: "
                      + ", ".join(f"{n} {c:,}" for n, c in sizes[:6]), flush=True)
                # History goes straight to the database (nothing to consume), but check before the clock starts.
                waited = time.monotonic()
                while not await caught_up(processes, base["KSBB_MONGODB_URL"], prefix):
                    if time.monotonic() - waited > 120:
                        raise SystemExit("the stack did not settle within 2 minutes after the history was added")
                    await asyncio.sleep(1)
                if args.settle:
                    await asyncio.sleep(args.settle)
                pids = {name: process.pid for name, (process, _) in processes.items()}
                profiling = asyncio.create_task(recorded_profiles(pids if args.profile else {}, args.window))
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                observed_from = time.time()
                trend: list[float] = []
                threads: list[dict[str, float]] = []
                for _ in range(parts):
                    started_at = time.monotonic()
                    process_before, threads_before = cpu_seconds(mongo_pid), grouped(thread_cpu_seconds(mongo_pid))
                    await asyncio.sleep(args.window / parts)
                    elapsed = time.monotonic() - started_at
                    # The whole process (/proc/<pid>/stat) is the figure; its threads only say where the CPU went.
                    trend.append(100 * (cpu_seconds(mongo_pid) - process_before) / elapsed)
                    after = grouped(thread_cpu_seconds(mongo_pid))
                    threads.append({g: 100 * (after[g] - threads_before.get(g, 0.0)) / elapsed for g in after})
                busy = {name: 100 * (cpu_seconds(pid) - before[name]) / args.window for name, pid in pids.items()}
                raw_profiles = await profiling
                services = {name: rss_mib(pid) for name, pid in pids.items()}
    except BaseException:
        recording.discard()  # nothing stays running in the server when the benchmark fails
        raise
    samples, compilations = await asyncio.to_thread(recording.stop, observed_from)
    step = args.window / parts
    since = [args.settle + step * i for i in range(parts)]  # seconds from catching up to each part's start
    labels = [f"{at:.0f}–{at + step:.0f}s" for at in since]
    trend_text = ", ".join(f"{label} {value:.1f} %" for label, value in zip(labels, trend, strict=True))
    print(f"database server CPU per part after catching up: {trend_text}")
    # The JVM's own housekeeping (compiling hot code, collecting garbage, our sampler) apart from the work the
    # services' commands and the storage engine cause: the two differ in what could be done about them.
    housekeeping = {"JIT compiler", "garbage collector", "flight recorder (this benchmark's sampler)"}
    work_text = ", ".join(
        f"{label} {max(0.0, value - sum(v for g, v in used.items() if g in housekeeping)):.1f} %"
        for label, value, used in zip(labels, trend, threads, strict=True))
    print("service RSS idle (MiB): " + ", ".join(f"{n} {v:.0f}" for n, v in services.items()))
    # (a) The first part from which every later part stays under the goal: "returns to idle" within that time.
    settled = next((i for i in range(parts) if all(value < GOAL_PERCENT for value in trend[i:])), None)
    settled_after = since[settled] if settled is not None else None
    # (b) Back to idle: the parts from a minute after catching up on (the last part in a shorter observation).
    late = [i for i in range(parts) if since[i] >= GOAL_SECONDS] or [parts - 1]
    idle = sum(trend[i] for i in late) / len(late)
    idle_span = f"{since[late[0]]:.0f}–{since[late[-1]] + step:.0f} s"
    context = (f"demo data ({args.recipients} recipients) plus {history:,} documents of history (largest collections: "
               + ", ".join(f"{n} {c:,}" for n, c in sizes[:4]) + f"); database server CPU per part of {step:.0f} s "
               f"after catching up: {trend_text} (without the JVM's JIT compiler, garbage collector and this "
               f"benchmark's sampler: {work_text}); the services meanwhile (% of a core, the {args.window:.0f} s "
               "observed): " + ", ".join(f"{n} {v:.1f}" for n, v in busy.items())
               + "; idle RSS (MiB): " + ", ".join(f"{n} {v:.0f}" for n, v in services.items()))
    results.add(Row(
        path="idle stack: seconds from catching up until the database server stays under 5 % of a core",
        figure=settled_after if settled_after is not None else args.settle + args.window, unit="s",
        goal=f"≤ {GOAL_SECONDS:g} s (under {GOAL_PERCENT:g} % of a core from then on)",
        met=settled_after is not None and settled_after <= GOAL_SECONDS,
        note=("" if settled_after is not None else
              f"not under {GOAL_PERCENT:g} % for the rest of the {args.window:.0f} s observed; ") + context,
    ))
    results.add(Row(
        path=f"idle stack: database server CPU {idle_span} after catching up (% of a core)",
        figure=idle, unit="% of a core", goal=f"< {GOAL_PERCENT:g} % of a core",
        baseline=baseline, baseline_label="% with no service connected",
        ratio=ratio(idle, max(baseline, 0.01), smaller_is_better=True), met=idle < GOAL_PERCENT,
        note=f"the part{'s' if len(late) > 1 else ''} {', '.join(labels[i] for i in late)} of the trend above",
    ))
    # Where the server's CPU went, per part (every thread, JIT and garbage collector included).
    per_part = []
    for label, used in zip(labels, threads, strict=True):
        top = sorted(((g, v) for g, v in used.items() if v >= 0.1), key=lambda item: -item[1])[:4]
        per_part.append(f"{label} " + (", ".join(f"{g} {v:.1f}" for g, v in top) or "nothing ≥ 0.1"))
    # What the parts over the goal and those under it spent their CPU on, by kind of work.
    for over, parts_chosen in ((True, [i for i in range(parts) if trend[i] >= GOAL_PERCENT]),
                               (False, [i for i in range(parts) if trend[i] < GOAL_PERCENT])):
        kinds: dict[str, int] = {}
        for i in parts_chosen:
            for group, value in threads[i].items():
                kind = work_kind(group)
                if value > 0:
                    kinds[kind] = kinds.get(kind, 0) + round(1000 * value)
        if parts_chosen:
            mean = sum(trend[i] for i in parts_chosen) / len(parts_chosen)
            results.notes.append(
                f"profile summary of the database server in the parts {'at or over' if over else 'under'} "
                f"{GOAL_PERCENT:g} % ({', '.join(labels[i] for i in parts_chosen)}; {mean:.1f} % of a core on "
                f"average): {ranked(kinds, 5)} of its CPU")
    results.notes.append("profile of the database server's CPU by thread group (% of a core per part, from "
                         "/proc/<pid>/task): " + "; ".join(per_part))
    if recording.error:
        results.notes.append(f"no flight-recorder profile of the database server ({recording.error})")
    else:
        busy_parts = range(0, max(settled if settled is not None else parts, 1))
        spans = [(f"{labels[busy_parts[0]].split('–')[0]}–{labels[busy_parts[-1]].split('–')[1]} after catching up",
                  observed_from + step * busy_parts[0], observed_from + step * (busy_parts[-1] + 1))]
        if late[0] > busy_parts[-1]:
            spans.append((f"{idle_span} after catching up", observed_from + step * late[0],
                          observed_from + step * (late[-1] + 1)))
        for span, start, end in spans:
            results.notes.append(f"profile of the database server {span} (Java Flight Recorder): "
                                 f"{summarise_compilations(compilations, start, end)}; execution samples (a running "
                                 f"Java thread every 20 ms): {summarise_samples(samples, start, end)}")
    for name, raw in raw_profiles.items():
        (logs / f"{name}.py-spy.txt").write_text(raw)  # kept next to the logs for a closer look
        results.notes.append(
            f"profile of {name} while idle ({busy[name]:.1f} % of a core over the {args.window:.0f} s observed; "
            f"py-spy): by package {summarise_profile(raw, top=5) if raw else 'not sampled'}; by asyncio task "
            f"{summarise_tasks(raw) if raw else 'not sampled'}")
    for note in results.notes:
        print(f"[idle] {note}", flush=True)
    results.write(args.json)


if __name__ == "__main__":
    asyncio.run(main())
