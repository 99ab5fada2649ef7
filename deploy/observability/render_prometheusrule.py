"""Write prometheusrule.yaml (the Prometheus Operator resource) from rules/ksbb-alerts.yml.

Usage: uv run python deploy/observability/render_prometheusrule.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules" / "ksbb-alerts.yml"
TARGET = HERE / "prometheusrule.yaml"
HEADER = "# Rendered by deploy/observability/render_prometheusrule.py from rules/ksbb-alerts.yml; do not edit.\n"


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, as they are written in the rules file."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _string)


def render() -> str:
    """The PrometheusRule resource wrapping the rule groups of the rules file."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "ksbb-alerts", "labels": {"app.kubernetes.io/part-of": "ksbb"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(resource, Dumper=_BlockDumper, sort_keys=False, width=120, allow_unicode=True)


def main(argv: list[str]) -> int:
    """Write the file, or with --check report whether it is current."""
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"stale: {TARGET} (run {Path(__file__).name})", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
