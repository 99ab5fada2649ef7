"""Entry point: `ksbb-pledges` runs the service."""

from __future__ import annotations

from ksbb_kit.runtime import serve

from ksbb_pledges.bootstrap import create_app
from ksbb_pledges.settings import PledgesSettings


def main() -> None:
    """Run the pledges service."""
    settings = PledgesSettings.load()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
