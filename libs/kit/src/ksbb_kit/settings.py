"""Settings base: one pydantic-settings object per service, `KSBB_<SERVICE>_` prefix with `KSBB_` fallback."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

if TYPE_CHECKING:
    from ksbb_kit.kafka import KafkaConnection

# A secret that starts like one of these was copied from an example or a default, never generated.
# Compared after lower-casing and dropping everything but letters and digits ("Change-Me_1" -> "changeme1").
PLACEHOLDER_PREFIXES = ("changeme", "placeholder", "devonly", "replaceme", "example", "secret", "password", "todo")
# Every secret value published in deploy/compose/env.example and the docs (tests keep this list complete).
PUBLISHED_EXAMPLE_VALUES = frozenset({
    "change-me", "change-me-to-a-long-random-value", "changeme-dev-secret",
})
# Fields holding secrets although typed `str` (older settings); SecretStr fields always count.
SECRET_FIELD_NAME = re.compile(r"(password|secret|token|_key)$")


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

    # -- Kafka in production: topics, replication, TLS and SASL/SCRAM ----------------------------
    kafka_create_topics: bool | None = Field(
        default=None,
        description="Create missing topics at start-up; default: yes, except in production (topics come from "
        "the rendered KafkaTopic resources or the compose topics-init job).",
    )
    kafka_replication_factor: int = Field(default=1, ge=1, description="Replicas of topics the kit creates.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: str | None = Field(
        default=None, description="PEM file of the CA that signed the brokers' certificates (default: system CAs)."
    )

    # Settings whose development default points at a developer's machine: production must set them.
    production_required: ClassVar[tuple[str, ...]] = ("kafka_bootstrap", "mongodb_url", "jwks_url", "jwt_issuer")

    @classmethod
    def load(cls) -> Self:
        """Read the settings from the environment; exit with one clear line per problem, not a traceback."""
        try:
            return cls()
        except ValidationError as exc:
            problems = [f"  - {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()]
            raise SystemExit("\n".join([f"{cls.__name__}: the configuration is not usable:", *problems])) from None

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
        problems = []  # all at once: an operator fixes the deployment in one round
        if self.env == "production":
            for name, value in self:
                if not self._is_secret_field(name, value) or value is None:
                    continue
                plain = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
                if self._is_placeholder(name, plain):
                    problems.append(
                        f"{name} still has a placeholder, example or development value; "
                        f"set a real secret in {self.env_names(name)} outside development"
                    )
            problems += [f"{name} must be set in production ({self.env_names(name)})"
                         for name in self.production_required if name not in self.model_fields_set]
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            problems.append(
                f"kafka_security_protocol {self.kafka_security_protocol} needs kafka_sasl_username and "
                f"kafka_sasl_password ({self.env_names('kafka_sasl_username')}, "
                f"{self.env_names('kafka_sasl_password')})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def _is_secret_field(cls, name: str, value: object) -> bool:
        annotation = str(cls.model_fields[name].annotation) if name in cls.model_fields else ""
        return isinstance(value, SecretStr) or "SecretStr" in annotation or bool(SECRET_FIELD_NAME.search(name))

    def _is_placeholder(self, name: str, plain: str) -> bool:
        """Empty, published in an example, the field's development default, or shaped like a placeholder."""
        default = type(self).model_fields[name].default
        default_plain = default.get_secret_value() if isinstance(default, SecretStr) else default
        squashed = re.sub(r"[^a-z0-9]", "", plain.lower())
        return (
            not plain.strip()
            or plain in PUBLISHED_EXAMPLE_VALUES
            or plain == default_plain
            or squashed.startswith(PLACEHOLDER_PREFIXES)
        )

    def env_names(self, name: str) -> str:
        """The environment variables a field is read from, service-specific first."""
        own = f"{self.model_config.get('env_prefix', 'KSBB_')}{name}".upper()
        shared = f"KSBB_{name}".upper()
        return own if own == shared else f"{own} or {shared}"

    @property
    def creates_topics(self) -> bool:
        """Whether the service creates missing topics at start-up (never in production unless asked)."""
        if self.kafka_create_topics is not None:
            return self.kafka_create_topics
        return self.env != "production"

    @property
    def kafka_connection(self) -> KafkaConnection:
        """How every Kafka client of this service connects (bootstrap, TLS, SASL/SCRAM)."""
        from ksbb_kit.kafka import KafkaConnection

        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        return KafkaConnection(
            bootstrap=self.kafka_bootstrap, security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism, sasl_username=self.kafka_sasl_username,
            sasl_password=password, ssl_ca_file=self.kafka_ssl_ca_file,
        )

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
