"""`ksbb-portal`: run the portal with uvicorn (JSON logs, trusted proxies and root path from the settings)."""

from __future__ import annotations

from ksbb_kit.runtime import serve

from ksbb_portal.bootstrap import create_app
from ksbb_portal.settings import PortalSettings


def main() -> None:
    """Start the portal."""
    settings = PortalSettings.load()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
