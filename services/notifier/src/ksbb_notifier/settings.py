"""Settings of the notifier service (environment prefix KSBB_NOTIFIER_, falling back to KSBB_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from ksbb_kit.settings import KitSettings


class NotifierSettings(KitSettings):
    """Every setting of the notifier service."""

    model_config = SettingsConfigDict(env_prefix="KSBB_NOTIFIER_", extra="ignore")
    service_name: ClassVar[str] = "notifier"

    http_port: int = 8103
