"""Settings of the publisher service (environment prefix KSBB_PUBLISHER_, falling back to KSBB_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from ksbb_kit.settings import KitSettings


class PublisherSettings(KitSettings):
    """Every setting of the publisher service."""

    model_config = SettingsConfigDict(env_prefix="KSBB_PUBLISHER_", extra="ignore")
    service_name: ClassVar[str] = "publisher"

    http_port: int = 8104
