"""Settings of the registry service (environment prefix KSBB_REGISTRY_, falling back to KSBB_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from ksbb_kit.settings import KitSettings


class RegistrySettings(KitSettings):
    """Every setting of the registry service."""

    model_config = SettingsConfigDict(env_prefix="KSBB_REGISTRY_", extra="ignore")
    service_name: ClassVar[str] = "registry"

    http_port: int = 8101
