"""Entry point: `ksbb-publisher` runs the service; `ksbb-publisher rebuild` rebuilds the read models."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from ksbb_kit.progress import ProgressReport
from ksbb_kit.runtime import serve

from ksbb_publisher.bootstrap import create_app, rebuild
from ksbb_publisher.settings import PublisherSettings


def rebuild_command(argv: list[str] | None = None) -> None:
    """`ksbb-publisher rebuild`: drop the read models and project every public topic again from offset 0
    (a progress bar with rate and time left on a terminal, a line every few seconds otherwise)."""
    parser = argparse.ArgumentParser(prog="ksbb-publisher rebuild", description=rebuild_command.__doc__)
    parser.add_argument("--database", help="target database (default: the service's own)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with ProgressReport("rebuild", unit="events") as progress:
        counts = asyncio.run(rebuild(PublisherSettings(), database=args.database, progress=progress))
    print(json.dumps(counts))


def main() -> None:
    """Run the publisher service, or a sub-command."""
    if len(sys.argv) > 1 and sys.argv[1] == "rebuild":
        rebuild_command(sys.argv[2:])
        return
    settings = PublisherSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
