"""Entry point: `ksbb-publisher` runs the service; `ksbb-publisher rebuild` rebuilds the read models."""

from __future__ import annotations

import sys

from ksbb_kit.runtime import serve

from ksbb_publisher.bootstrap import create_app
from ksbb_publisher.settings import PublisherSettings


def main() -> None:
    """Run the publisher service, or a sub-command."""
    if len(sys.argv) > 1 and sys.argv[1] == "rebuild":
        from ksbb_publisher.rebuild import main as rebuild_main

        rebuild_main(sys.argv[2:])
        return
    settings = PublisherSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
