"""Entry point: `ksbb-publisher` runs the service; `rebuild` rebuilds the read models; `snapshot` re-takes one."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import date

from ksbb_kit.progress import ProgressReport
from ksbb_kit.runtime import serve

from ksbb_publisher.bootstrap import create_app, rebuild, retake_snapshot
from ksbb_publisher.settings import PublisherSettings


def rebuild_command(argv: list[str] | None = None) -> None:
    """`ksbb-publisher rebuild`: drop the read models and project every public topic again from offset 0
    (a progress bar with rate and time left on a terminal, a line every few seconds otherwise)."""
    parser = argparse.ArgumentParser(prog="ksbb-publisher rebuild", description=rebuild_command.__doc__)
    parser.add_argument("--database", help="target database (default: the service's own)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with ProgressReport("rebuild", unit="events") as progress:
        counts = asyncio.run(rebuild(PublisherSettings.load(), database=args.database, progress=progress))
    print(json.dumps(counts))


def snapshot_command(argv: list[str] | None = None) -> None:
    """`ksbb-publisher snapshot --day YYYY-MM-DD`: take that day's open-data snapshot again from the read models
    as they are now (e.g. after a rebuild, or when the day's snapshot was taken before they caught up)."""
    parser = argparse.ArgumentParser(prog="ksbb-publisher snapshot", description=snapshot_command.__doc__)
    parser.add_argument("--day", required=True, type=date.fromisoformat, help="the snapshot's day, YYYY-MM-DD")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    meta = asyncio.run(retake_snapshot(PublisherSettings.load(), args.day))
    print(json.dumps({"snapshot_id": meta["_id"], "files": len(meta["files"])}))


def main() -> None:
    """Run the publisher service, or a sub-command."""
    if len(sys.argv) > 1 and sys.argv[1] == "rebuild":
        rebuild_command(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "snapshot":
        snapshot_command(sys.argv[2:])
        return
    settings = PublisherSettings.load()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
