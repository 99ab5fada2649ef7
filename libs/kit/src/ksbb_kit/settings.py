"""Settings base: one pydantic-settings object per service, `KSBB_<SERVICE>_` prefix with `KSBB_` fallback."""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

PLACEHOLDER_PREFIXES = ("changeme", "placeholder", "dev-only")


class KitSettings(BaseSettings):
    """Settings every service shares; subclasses set `service_name` and `env_prefix`."""

    model_config = SettingsConfigDict(env_prefix="KSBB_", extra="ignore", env_file=None)
    service_name: ClassVar[str] = "service"

    env: Literal["development", "test", "production"] = "development"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    public_url: str | None = Field(default=None, description="Base URL the service is reached at (links in docs).")
    kafka_bootstrap: str = "127.0.0.1:19092"
    mongodb_url: str = "mongodb://127.0.0.1:27018/"
    mongodb_db: str | None = Field(default=None, description="Database name; defaults to ksbb_<service>.")
    topic_prefix: str = Field(default="", description="Prefix for every topic and group (test isolation).")
    topic_partitions: int | None = Field(
        default=None, ge=1, description="Override the contracts' partition counts (tests keep the broker small)."
    )
    jwks_url: str = Field(default=".ksbb/dev-issuer/jwks.json", description="JWKS URL or file path.")
    jwt_issuer: str = "ksbb-dev-issuer"
    jwt_audience: str = "ksbb"
    log_level: str = "INFO"
    outbox_sweep_seconds: float = Field(default=5.0, gt=0)
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    handler_max_attempts: int = Field(default=5, ge=1)
    handler_backoff_seconds: float = Field(default=0.2, ge=0)
    processed_ids_kept: int = Field(default=500, ge=10, description="Event ids remembered per document.")
    idempotency_retention_hours: float = Field(default=48.0, gt=0)
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    secret_key: SecretStr = SecretStr("changeme-dev-secret")

    # -- behind the gateway ------------------------------------------------------------------------
    forwarded_allow_ips: str = Field(
        default="",
        description="Comma-separated addresses or networks of the proxies (the gateway) whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; default: nobody, so clients cannot choose their own address.",
    )
    root_path: str = Field(
        default="", pattern=r"^(/[A-Za-z0-9._~-]+)*$",
        description="Path prefix the gateway serves this service's own docs under, e.g. /svc/registry.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Service-prefixed variables win over the shared `KSBB_` ones (e.g. from the infra env file)."""
        shared = EnvSettingsSource(settings_cls, env_prefix="KSBB_", case_sensitive=False)
        return init_settings, env_settings, shared, dotenv_settings, file_secret_settings

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    def trusted_proxies(self) -> list[str]:
        """The proxy addresses/networks from `forwarded_allow_ips` (empty: trust no forwarding header)."""
        return [part.strip() for part in self.forwarded_allow_ips.split(",") if part.strip()]

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> KitSettings:
        if self.env == "production":
            for name, value in self:
                if isinstance(value, SecretStr) and value.get_secret_value().lower().startswith(PLACEHOLDER_PREFIXES):
                    raise ValueError(f"{name} still has its placeholder value; set a real secret outside development")
        return self

    @property
    def database_name(self) -> str:
        """The service's own MongoDB database."""
        return self.mongodb_db or f"{self.topic_prefix.replace('.', '_')}ksbb_{self.service_name}"

    @property
    def consumer_group(self) -> str:
        """The service's Kafka consumer group (one per service; replicas share partitions)."""
        return f"{self.topic_prefix}{self.service_name}"

    def topic(self, name: str) -> str:
        """The physical topic name for a logical one."""
        return f"{self.topic_prefix}{name}"

    def override(self, **changes: Any) -> KitSettings:
        """A copy with some fields changed (tests)."""
        return self.model_copy(update=changes)
