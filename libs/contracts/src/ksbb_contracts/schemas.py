"""Export every event's JSON Schema to docs/events/ (`ksbb-export-schemas [--check]`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ksbb_contracts.envelope import CloudEvent
from ksbb_contracts.events import EVENT_TYPES


def render_schemas() -> dict[str, str]:
    """File name → JSON text for the envelope and every event type."""
    files = {"cloudevent.envelope.json": CloudEvent.model_json_schema()}
    for event_type, model in sorted(EVENT_TYPES.items()):
        schema = model.model_json_schema()
        schema["title"] = event_type
        schema["x-ksbb-topic"] = model.topic.name
        schema["x-ksbb-subject"] = model.subject_field
        files[f"{event_type}.json"] = schema
    return {name: json.dumps(body, indent=2, sort_keys=True) + "\n" for name, body in files.items()}


def main(argv: list[str] | None = None) -> int:
    """Write the schemas, or with --check report files that differ from the models."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/events", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if committed schemas differ")
    args = parser.parse_args(argv)
    rendered = render_schemas()
    stale = [n for n, text in rendered.items() if not (args.out / n).exists() or (args.out / n).read_text() != text]
    extra = [p.name for p in args.out.glob("*.json") if p.name not in rendered] if args.out.exists() else []
    if args.check:
        for name in stale + extra:
            print(f"stale schema: {args.out / name}", file=sys.stderr)
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in extra:
        (args.out / name).unlink()
    for name, text in rendered.items():
        (args.out / name).write_text(text)
    print(f"wrote {len(rendered)} schemas to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
