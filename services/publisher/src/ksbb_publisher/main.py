"""Entry point: `ksbb-publisher` runs the service."""

from __future__ import annotations

from ksbb_publisher.bootstrap import create_app
from ksbb_publisher.settings import PublisherSettings
from ksbb_kit.runtime import serve


def main() -> None:
    """Run the publisher service."""
    settings = PublisherSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
