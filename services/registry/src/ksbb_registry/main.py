"""Entry point: `ksbb-registry` runs the service."""

from __future__ import annotations

from ksbb_kit.runtime import serve

from ksbb_registry.bootstrap import create_app
from ksbb_registry.settings import RegistrySettings


def main() -> None:
    """Run the registry service."""
    settings = RegistrySettings.load()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
