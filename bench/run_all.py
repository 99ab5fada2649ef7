"""`make bench`: every benchmark of bench/suite.py on its own fresh infrastructure, one after another, then
docs/performance.md and its plots regenerated from the results.

    uv run --no-sync python bench/run_all.py                 # everything (what `make bench` does)
    uv run --no-sync python bench/run_all.py --only publisher # one benchmark; the others keep their last rows
    uv run --no-sync python bench/run_all.py --report-only    # regenerate the document from the stored results

Results are kept per benchmark in docs/performance-data.json (each row with its machine, date and git
revision), so a partial run replaces only its own rows. The document is generated; never edit it by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from common import ROOT, fresh_infra, machine
from ksbb_kit.progress import ProgressReport
from suite import Benchmark, by_name

DOCS = ROOT / "docs"
DATA = DOCS / "performance-data.json"
REPORT = DOCS / "performance.md"
LOGS = ROOT / ".ksbb" / "bench"


def git_revision() -> str:
    """The commit benchmarked, marked `+changes` when the working tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True)
    revision = head.stdout.strip() or "unknown"
    return revision + ("+changes" if dirty.stdout.strip() else "")


@contextlib.contextmanager
def environment_for(benchmark: Benchmark) -> Iterator[dict[str, str]]:
    """A fresh infrastructure for the benchmark, or the plain environment when it needs none."""
    if not benchmark.infrastructure:
        yield dict(os.environ)
        return
    with fresh_infra(benchmark.name, backend=benchmark.backend, heap=benchmark.heap) as env:
        yield env


def run(benchmark: Benchmark, *, tiny: bool) -> dict[str, Any]:
    """Run one benchmark script; its results (rows, series) plus how the run went."""
    LOGS.mkdir(parents=True, exist_ok=True)
    output = LOGS / f"{benchmark.name}.json"
    log = LOGS / f"{benchmark.name}.log"
    output.unlink(missing_ok=True)
    args = ["--tiny"] if tiny else list(benchmark.args)
    started = time.monotonic()
    with environment_for(benchmark) as env, log.open("w") as sink:
        command = [sys.executable, str(ROOT / "bench" / benchmark.script), *args, "--json", str(output)]
        sink.write("$ " + " ".join(command) + "\n")
        sink.flush()
        process = subprocess.run(command, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    found: dict[str, Any] = json.loads(output.read_text()) if output.exists() else {"rows": [], "series": []}
    found.update(
        benchmark=benchmark.name, returncode=process.returncode, minutes=round(elapsed / 60, 1),
        machine=machine(), date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), revision=git_revision(),
        backend=benchmark.backend if benchmark.infrastructure else "none", log=str(log.relative_to(ROOT)),
    )
    if process.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        lines = "\n    ".join(tail)
        found.setdefault("notes", []).append(f"the run failed (exit {process.returncode}); last lines:\n    {lines}")
    return found


def main() -> None:
    """Run the chosen benchmarks, store their results and regenerate the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--tiny", action="store_true", help="smallest sizes (a smoke run; results not stored)")
    parser.add_argument("--report-only", action="store_true", help="regenerate docs from the stored results")
    args = parser.parse_args()
    from report import SUITE_RUN, write_report

    registered = {b.script for b in by_name(None)}
    unregistered = sorted(p.name for p in (ROOT / "bench").glob("*_bench.py") if p.name not in registered)
    if unregistered:
        print(f"not in bench/suite.py yet (not run): {', '.join(unregistered)}", flush=True)
    stored: dict[str, Any] = json.loads(DATA.read_text()) if DATA.exists() else {}
    chosen = by_name(args.only.split(",") if args.only else None)
    failed = []
    ran: dict[str, Any] = {}
    if not args.report_only:
        started = time.monotonic()
        with ProgressReport("make bench", unit="benchmarks", interval=30) as progress:
            progress.start(len(chosen))
            for benchmark in chosen:
                print(f"== {benchmark.name} ({benchmark.script}, about {benchmark.minutes:g} min)", flush=True)
                result = run(benchmark, tiny=args.tiny)
                print(f"== {benchmark.name}: exit {result['returncode']} after {result['minutes']} min; "
                      f"log {result['log']}", flush=True)
                if result["returncode"] != 0:
                    failed.append(benchmark.name)
                ran[benchmark.name] = result
                progress.advance(1)
        if args.tiny:
            print("tiny run: results not stored, docs unchanged")
            sys.exit(1 if failed else 0)
        # Read again just before writing: another run may have stored its benchmarks meanwhile (keep them).
        stored = json.loads(DATA.read_text()) if DATA.exists() else {}
        stored.update(ran)
        if not args.only:
            stored[SUITE_RUN] = {
                "minutes": round((time.monotonic() - started) / 60, 1), "benchmarks": sorted(ran),
                "machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "revision": git_revision(),
            }
        DATA.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    write_report(stored, REPORT, DOCS, unregistered=unregistered)
    print(f"wrote {REPORT.relative_to(ROOT)}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
