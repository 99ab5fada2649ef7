"""Settings of the pledges service (environment prefix KSBB_PLEDGES_, falling back to KSBB_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from ksbb_kit.settings import KitSettings


class PledgesSettings(KitSettings):
    """Every setting of the pledges service."""

    model_config = SettingsConfigDict(env_prefix="KSBB_PLEDGES_", extra="ignore")
    service_name: ClassVar[str] = "pledges"

    http_port: int = 8102
