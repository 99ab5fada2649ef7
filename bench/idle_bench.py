"""Idle benchmark: CPU the database server burns while the whole stack has nothing to do.

    uv run --no-sync python bench/idle_bench.py            # against the infrastructure in the environment

1. Measures the database server's CPU with no service connected (the baseline);
2. starts the four services (each its own process, on free ports, in a fresh namespace), seeds the demo
   data through their HTTP APIs (as `make run` does; the demo's webhook endpoint is a local receiver that
   accepts every delivery) and waits until every consumer group has caught up, every outbox is empty and
   no webhook delivery is pending;
3. adds history: `--history` copies of every document the seeds left (finished, with nothing pending or
   due, a week older, under new ids), as a stack that has run for a while has — a few thousand documents
   per collection (fewer seeded recipients and more copies: copying is much faster than seeding);
4. measures the database server's CPU (from /proc/<pid>/stat of its Java process) over the minute that
   starts when everything (history included) has caught up, in slices, so the note shows how fast it
   returns to idle within that minute. Goal: under 5 % of a core.

Periodic work that scans a collection (a sweep, a poll, a relay pass) costs CPU in proportion to what the
stack has ever stored, so this figure is where a scan that grows with history shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
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
    rss_mib,
    service_env,
    started_services,
    wait_ready,
)
from ksbb_kit.auth import DevIssuer
from ksbb_kit.demo import DemoContext
from ksbb_kit.mongo import connect
from pymongo.errors import BulkWriteError

GOAL_PERCENT = 5.0
#: Collections that hold no history: bookkeeping of pending work, counters, snapshots.
NOT_HISTORY = {"feed_sequence", "snapshots", "snapshot_chunks", "dead_letter_payloads", "report_rate",
               "delivery_due", "email_due", "sweep_due", "idempotency_expiry"}
#: How much older the history copies are than what the seeds wrote.
HISTORY_AGE = timedelta(days=7)


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
    parser.add_argument("--window", type=float, default=60.0, help="seconds of the measured minute after catching up")
    parser.add_argument("--slices", type=int, default=6, help="parts of the window reported separately")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds after catching up before the window")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of the no-service measurement")
    parser.add_argument("--recipients", type=int, default=100, help="recipients the registry demo seeds")
    parser.add_argument("--seeds", default=",".join(SERVICES), help="services whose demo seed runs, in order")
    parser.add_argument("--history", type=int, default=30, help="copies of the seeded documents added as history")
    args = parser.parse_args()
    if args.tiny:
        args.window, args.slices, args.baseline, args.recipients, args.seeds, args.history = 1.0, 2, 0.5, 3, \
            "registry", 1
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
    print(f"service logs in {logs}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ksbb-idle-") as tmp, webhook_receiver() as receiver:
        os.environ["KSBB_DEMO_WEBHOOK_URL"] = receiver  # the notifier demo's endpoint answers (nothing retries)
        issuer = DevIssuer(Path(tmp) / "issuer")
        with started_services(service_env(base, issuer, prefix), logs) as processes:
            await wait_ready(processes, logs)
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
            before = {name: cpu_seconds(process.pid) for name, (process, _) in processes.items()}
            slices = [await cpu_share(mongo_pid, args.window / args.slices) for _ in range(args.slices)]
            idle = sum(slices) / len(slices)
            busy = {name: 100 * (cpu_seconds(process.pid) - before[name]) / args.window
                    for name, (process, _) in processes.items()}
            services = {name: rss_mib(process.pid) for name, (process, _) in processes.items()}
    step = args.window / args.slices
    trend = ", ".join(f"{step * i:.0f}–{step * (i + 1):.0f}s {v:.1f} %" for i, v in enumerate(slices))
    print(f"database server CPU per part of the minute after catching up: {trend}")
    print("service RSS idle (MiB): " + ", ".join(f"{n} {v:.0f}" for n, v in services.items()))
    results.add(Row(
        path="idle stack: database server CPU (% of a core), the minute after catching up",
        figure=idle, unit="% of a core", goal=f"< {GOAL_PERCENT:g} % of a core",
        baseline=baseline, baseline_label="% with no service connected",
        ratio=ratio(idle, max(baseline, 0.01), smaller_is_better=True), met=idle < GOAL_PERCENT,
        note=f"demo data ({args.recipients} recipients) plus {history:,} documents of history (largest collections: "
             + ", ".join(f"{n} {c:,}" for n, c in sizes[:4]) + f"); per part of the minute: {trend}"
             + (f" (after {args.settle:.0f}s settling)" if args.settle else "")
             + "; the services themselves meanwhile (% of a core): "
             + ", ".join(f"{n} {v:.1f}" for n, v in busy.items())
             + "; idle RSS (MiB): " + ", ".join(f"{n} {v:.0f}" for n, v in services.items()),
    ))
    results.write(args.json)


if __name__ == "__main__":
    asyncio.run(main())
