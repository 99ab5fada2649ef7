"""Every benchmark of `make bench` runs once at its smallest size, so none of them rots.

Each script runs as `make bench` runs it (a separate process), here against the test run's Kafka and
database server with `--tiny`. The test checks that it finishes and reports its rows; it never looks at a
figure's value: timings belong to `make bench` and docs/performance.md, not to tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ksbb_kit.testing.infra import Infra

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from suite import BENCHMARKS, Benchmark  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("benchmark", BENCHMARKS, ids=lambda b: b.name)
def test_the_benchmark_runs_at_its_smallest_size_and_reports_rows(
    benchmark: Benchmark, infra: Infra, tmp_path: Path
) -> None:
    output = tmp_path / "results.json"
    env = {**os.environ, "KSBB_KAFKA_BOOTSTRAP": infra.kafka_bootstrap, "KSBB_MONGODB_URL": infra.mongodb_url}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / benchmark.script), "--tiny", "--json", str(output)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, f"{benchmark.script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    results = json.loads(output.read_text())
    assert results["benchmark"] == benchmark.name
    assert results["rows"], "a benchmark reports at least one row"
    for row in results["rows"]:
        assert row["path"] and row["unit"] and row["goal"], row
        assert isinstance(row["figure"], int | float), row


def test_the_report_is_generated_from_results_with_a_table_and_a_plot(tmp_path: Path) -> None:
    from report import write_report

    results = {
        "publisher": {
            "machine": "2 cores", "date": "2026-01-05 08:00 UTC", "revision": "abc", "backend": "memory",
            "returncode": 0, "minutes": 1.0, "log": "x.log", "notes": ["a note"],
            "rows": [{"path": "rebuild", "figure": 1000.0, "unit": "events/s", "baseline": 2000.0,
                      "baseline_label": "events/s raw", "ratio": 0.5, "goal": "≥ 0.5", "met": True, "note": ""}],
            "series": [{"plot": "rebuild_scaling", "label": "rebuild", "x_label": "events", "y_label": "events/s",
                        "points": [[100, 10.0], [1000, 20.0], [10000, 30.0]]}],
        }
    }
    page = tmp_path / "performance.md"
    write_report(results, page, tmp_path)
    text = page.read_text()
    assert "| rebuild | 1,000 events/s | 2,000 events/s raw | 0.50 | ≥ 0.5 | yes | 2 cores |" in text
    assert "![rebuild_scaling](performance-rebuild-scaling.png)" in text
    assert (tmp_path / "performance-rebuild-scaling.png").read_bytes().startswith(b"\x89PNG")


def test_the_report_names_every_goal_not_met_with_its_profile_and_the_suite_duration(tmp_path: Path) -> None:
    from report import SUITE_RUN, write_report

    run = {"machine": "2 cores", "date": "2026-01-05 08:00 UTC", "revision": "abc", "backend": "memory",
           "returncode": 0, "minutes": 3.0, "log": "x.log", "series": []}
    results = {
        "notifier": {**run, "notes": ["profile of the burst: notifier 95 % of a core", "an unrelated note"],
                     "rows": [{"path": "burst", "figure": 224.0, "unit": "deliveries/s", "baseline": None,
                               "baseline_label": "", "ratio": None, "goal": "≥ 500 deliveries/s", "met": False,
                               "note": ""}]},
        "matching": {**run, "notes": ["profile of matching"],
                     "rows": [{"path": "offer", "figure": 0.1, "unit": "ms", "baseline": None, "baseline_label": "",
                               "ratio": None, "goal": "informational", "met": None, "note": ""}]},
        SUITE_RUN: {"minutes": 31.5, "benchmarks": ["matching", "notifier"], "machine": "2 cores",
                    "date": "2026-01-05 08:30 UTC", "revision": "abc"},
    }
    page = tmp_path / "performance.md"
    write_report(results, page, tmp_path)
    text = page.read_text()
    unmet = text.split("## Goals not met, and what holds them back", 1)[1].split("\n## ", 1)[0]
    assert "- burst: 224 deliveries/s (goal ≥ 500 deliveries/s)" in unmet
    assert "- profile of the burst: notifier 95 % of a core" in unmet
    assert "an unrelated note" not in unmet and "profile of matching" not in unmet
    assert "took **31.5 min**" in text and "(goal ≤ 30 min: **not met**)" in text
    assert "| _suite_run" not in text
