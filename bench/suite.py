"""Every benchmark `make bench` runs, in order: adding one is one entry here.

A benchmark is a script in bench/ that takes `--json PATH` (its result rows and plot series, see
common.Results) and `--tiny` (the smallest sizes, run by the test suite so no benchmark rots). `args` are
its arguments for `make bench`; each runs on its own fresh infrastructure (own Kafka and database server).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script and how `make bench` runs it."""

    name: str
    script: str
    #: Arguments for `make bench` (the full size).
    args: tuple[str, ...] = ()
    #: The database server's backend for its fresh infrastructure: `memory` (tests) or `h2` (`make run`).
    backend: str = "memory"
    #: Java heap of the fresh Kafka and database server.
    heap: str = "1g"
    #: Whether it needs Kafka and the database server at all.
    infrastructure: bool = True
    #: What it usually takes on the reference machine, for the progress shown by `make bench` (minutes).
    minutes: float = 5.0


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("idle", "idle_bench.py", backend="h2", minutes=3),
    Benchmark("publisher", "publisher_bench.py", args=("--sizes", "100000,1000000"), heap="3g", minutes=4.5),
    Benchmark("matching", "matching_bench.py", infrastructure=False, minutes=1),
    Benchmark("notifier", "notifier_bench.py", minutes=2),
    Benchmark("pledges", "pledges_bench.py", minutes=1.5),
    Benchmark("registry", "registry_bench.py", minutes=4),
    Benchmark("gateway", "gateway_bench.py", minutes=1.5),
    Benchmark("portal", "portal_bench.py", minutes=2.5),
    # 60 s per rate step, as issue 14 asks (a step stops early only when the API falls behind).
    Benchmark("propagation", "propagation_bench.py", args=("--seconds", "60", "--drain", "60"), minutes=7),
)


def by_name(names: list[str] | None) -> list[Benchmark]:
    """The benchmarks with these names (all when none are given), in suite order."""
    if not names:
        return list(BENCHMARKS)
    unknown = set(names) - {b.name for b in BENCHMARKS}
    if unknown:
        raise SystemExit(f"unknown benchmarks: {', '.join(sorted(unknown))} (known: {[b.name for b in BENCHMARKS]})")
    return [b for b in BENCHMARKS if b.name in names]
