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
