"""Settings of the registry service (environment prefix KSBB_REGISTRY_, falling back to KSBB_)."""

from __future__ import annotations

from typing import ClassVar

from ksbb_kit.settings import KitSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class RegistrySettings(KitSettings):
    """Every setting of the registry service."""

    model_config = SettingsConfigDict(env_prefix="KSBB_REGISTRY_", extra="ignore")
    service_name: ClassVar[str] = "registry"
    requires_secret_key: ClassVar[bool] = False  # nothing here is signed or encrypted with it

    http_port: int = 8101
    report_limit_per_hour: int = Field(
        default=5, ge=1, description="Public concern reports per address and hour."
    )
    claim_grace_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Age after which a duplicate-key claim without its recipient counts as left by a crash.",
    )
    invitation_client_id: str | None = Field(
        default=None,
        description="Client whose redirect URI the invitation e-mail's link returns to (e.g. ksbb-portal).",
    )
    invitation_redirect_uri: str | None = Field(
        default=None, description="Where an invited person lands after setting a password (needs the client)."
    )
    restate_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Anti-entropy: how often a page of needs, of recipients and of organisations is re-published "
        "so consumers repair diverged views.",
    )
    restate_page_size: int = Field(
        default=500, ge=1, le=10_000, description="Needs (and recipients, organisations) re-published per run."
    )
