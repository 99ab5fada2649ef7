"""Entry point: `ksbb-notifier` runs the service."""

from __future__ import annotations

from ksbb_kit.runtime import serve

from ksbb_notifier.bootstrap import create_app
from ksbb_notifier.settings import NotifierSettings


def main() -> None:
    """Run the notifier service."""
    settings = NotifierSettings.load()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
