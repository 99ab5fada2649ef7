"""Benchmark of the matching engine: offers poured one after another over many open needs.

Usage: uv run --no-sync python bench/matching_bench.py [--needs 20000] [--offers 100000] [--seed 1]

Two engines, same results (a property test checks they agree):
* `allocate` — what the API does per offer: rank every open need of the item, pour greedily;
  O(n log n) per offer. Measured on a sample (`--sample` offers) and extrapolated to `--offers`.
* `Matcher` — ranks once, O(n log n), then per offer walks the ranking (of the preferred kota) until
  placed and re-ranks only the needs it touched. Run over all `--offers` offers.
Remaining quantities are lowered after each offer, as acceptance would. A scaling run over 1/4, 1/2 and
all of the needs shows how the per-offer cost of `allocate` grows.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from common import Results, Row, bench_arguments
from ksbb_contracts.areas import areas
from ksbb_contracts.vocab import Priority
from ksbb_pledges.domain.matching import Matcher, NeedCandidate, allocate, fairness_spread

Outcome = tuple[list[float], int, dict[str, int]]


def make_needs(count: int, rng: random.Random) -> list[NeedCandidate]:
    """Random open needs spread over every kelurahan of Jakarta."""
    kelurahan = [a.code for a in areas().level("kelurahan")]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    needs = []
    for index in range(count):
        requested = rng.randint(10, 200)
        needs.append(
            NeedCandidate(
                need_id=f"ned_{index:06d}",
                recipient_id=f"rcp_{index // 3:06d}",
                requested=requested,
                remaining=rng.randint(1, requested),
                priority=rng.choice(list(Priority)),
                needed_by=date(2026, 3, 1) + timedelta(days=rng.randint(0, 60)),
                kelurahan_code=rng.choice(kelurahan),
                households=rng.randint(5, 300),
                last_received_at=None if rng.random() < 0.3 else start + timedelta(hours=rng.randint(0, 2000)),
                received_total=rng.randint(0, 500),
            )
        )
    return needs


def make_offers(count: int, rng: random.Random) -> list[tuple[int, list[str]]]:
    """Random offers: quantity and area preference (half anywhere, the rest a kota or a kecamatan)."""
    kota = [a.code for a in areas().level("kota")]
    kecamatan = [a.code for a in areas().level("kecamatan")]
    offers = []
    for _ in range(count):
        roll = rng.random()
        area = [] if roll < 0.5 else [rng.choice(kota)] if roll < 0.8 else [rng.choice(kecamatan)]
        offers.append((rng.randint(1, 20), area))  # ~1M units in all: about what 20k needs take
    return offers


def run(needs: list[NeedCandidate], offers: list[tuple[int, list[str]]], engine: str) -> Outcome:
    """Pour offers in sequence; returns per-offer seconds, units placed, units per recipient."""
    by_id = {n.need_id: n for n in needs}
    matcher = Matcher(needs) if engine == "matcher" else None
    timings: list[float] = []
    placed = 0
    received: dict[str, int] = {}
    served = 0
    for quantity, area in offers:
        began = time.perf_counter()
        if matcher is not None:
            allocation = matcher.allocate(quantity, area)
        else:
            allocation = allocate(quantity, by_id.values(), area)
        timings.append(time.perf_counter() - began)
        served += bool(allocation)
        for part in allocation:
            if matcher is None:
                need = by_id[part.need_id]
                by_id[part.need_id] = replace(need, remaining=need.remaining - part.quantity)
            placed += part.quantity
            received[part.recipient_id] = received.get(part.recipient_id, 0) + part.quantity
    if engine == "matcher":
        print(f"          {served} of {len(offers)} offers found needs (the rest came after their area had filled up)")
    return timings, placed, received


def report(name: str, offers: int, needs: int, elapsed: float, timings: list[float], placed: int) -> None:
    """Print one engine's figures."""
    ordered = sorted(timings)
    p99 = ordered[max(int(len(ordered) * 0.99) - 1, 0)]
    print(
        f"{name:<9} {offers:>7} offers over {needs} needs: {elapsed:8.2f} s, "
        f"{elapsed / offers * 1000:.3f} ms/offer (p50 {statistics.median(ordered) * 1000:.3f} ms, "
        f"p99 {p99 * 1000:.3f} ms), {placed} units placed"
    )


def main() -> None:
    """Run the benchmark and print (and optionally write) its figures."""
    parser = bench_arguments(__doc__)
    parser.add_argument("--needs", type=int, default=20_000)
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=200, help="offers run through `allocate` per offer")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.tiny:
        args.needs, args.offers, args.sample = 400, 200, 20
    results = Results("matching")

    print("allocate, scaling (per-offer time vs number of open needs):")
    for size in (args.needs // 4, args.needs // 2, args.needs):
        needs = make_needs(size, random.Random(args.seed))
        timings, _, _ = run(needs, make_offers(50, random.Random(args.seed)), "allocate")
        print(f"  {size:>7} needs: median {statistics.median(timings) * 1000:8.2f} ms/offer")

    needs = make_needs(args.needs, random.Random(args.seed))
    offers = make_offers(args.offers, random.Random(args.seed + 1))
    sample = offers[: args.sample]
    began = time.perf_counter()
    timings, placed, _ = run(needs, sample, "allocate")
    elapsed = time.perf_counter() - began
    allocate_ms = elapsed / len(sample) * 1000
    report("allocate", len(sample), args.needs, elapsed, timings, placed)
    print(f"          extrapolated to {args.offers} offers: {elapsed / len(sample) * args.offers:.0f} s")
    _, check_placed, _ = run(needs, sample, "matcher")
    assert check_placed == placed, "the engines disagree"
    began = time.perf_counter()
    timings, placed, received = run(needs, offers, "matcher")
    elapsed = time.perf_counter() - began
    report("Matcher", len(offers), args.needs, elapsed, timings, placed)
    matcher_ms = elapsed / len(offers) * 1000
    results.add(Row(
        path=f"matching: one offer over {args.needs:,} open needs (ms per offer)", figure=matcher_ms, unit="ms",
        baseline=allocate_ms, baseline_label="ms per offer re-ranking every need (`allocate`)",
        ratio=allocate_ms / matcher_ms if matcher_ms else None, goal="informational (same placements)",
    ))
    households = {n.recipient_id: n.households for n in needs}
    spread = fairness_spread(received, households)
    print(f"fairness_spread of the placed aid (1 − Gini per household): {spread:.3f}")
    print(
        "complexity: allocate O(n log n) per offer; Matcher O(n log n) once + per offer O(w + t·n) "
        "(w needs walked, t touched; list shifts are memmove)"
    )
    results.write(args.json)


if __name__ == "__main__":
    main()
