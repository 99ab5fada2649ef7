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
    # -- bearer tokens (see ksbb_kit.auth and docs/identity.md) ------------------------------------
    oidc_issuer: str | None = Field(
        default=None,
        description="Issuer URL of the OpenID Connect provider whose tokens are accepted, e.g. Keycloak's "
        "http://127.0.0.1:8180/realms/ksbb; its discovery document names the JWKS (cached, refetched on rotation).",
    )
    jwt_audience: str = Field(default="ksbb", description="Audience accepted tokens must name (aud string or list).")
    jwt_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"],
        description="Signature algorithms accepted (asymmetric only; a token with another alg is refused).",
    )
    jwks_url: str = Field(
        default=".ksbb/dev-issuer/jwks.json",
        description="JWKS of the fixed issuer jwt_issuer: the development issuer's file (needs dev_issuer_enabled), "
        "or the http(s) URL of a provider without a discovery document.",
    )
    jwt_issuer: str = Field(default="ksbb-dev-issuer", description="The issuer whose keys are at jwks_url.")
    dev_issuer_enabled: bool = Field(
        default=False,
        description="Trust the local development issuer (a JWKS file at jwks_url): set by the test plugin and "
        "`make run`'s demo seed only; refused in production.",
    )
    jwks_cache_seconds: float = Field(default=300.0, gt=0, description="How long fetched signing keys are reused.")
    jwks_min_refetch_seconds: float = Field(
        default=10.0, ge=0, description="At most one JWKS refetch per this many seconds for unknown key ids."
    )
    identity_admin_client_id: str = Field(
        default="ksbb-registry-admin", description="Keycloak client whose service account may manage users."
    )
    identity_admin_client_secret: SecretStr | None = Field(
        default=None, description="Secret of identity_admin_client_id (the realm file's value is development-only)."
    )
    log_level: str = "INFO"
    outbox_sweep_seconds: float = Field(default=5.0, gt=0)
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    outbox_marker_grace_seconds: float = Field(
        default=120.0, gt=0,
        description="How long a write may take at most: an outbox marker nobody renewed for this long, whose document "
        "has nothing pending, is removed (it was left by a crash between the marker and the write).",
    )
    handler_max_attempts: int = Field(default=5, ge=1)
    handler_backoff_seconds: float = Field(default=0.2, ge=0)
    idempotency_retention_hours: float = Field(default=48.0, gt=0)
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    dead_letter_max_bytes: int = Field(
        default=1_000_000, ge=64 * 1024,
        description="Largest dead letter sent as a whole; a larger one keeps its headers and a truncated value, "
        "its full payload goes to the service database's dead_letter_payloads (`ksbb dlq show`). Keep it below "
        "the producer's max request size (1 MiB) and the dead-letter topics' max.message.bytes.",
    )
    max_request_body_bytes: int = Field(
        default=1_048_576, ge=1024,
        description="Largest HTTP request body accepted; larger ones get 413 before parsing and before "
        "authentication. A route may allow more or less (ksbb_kit.http_limits.max_body_bytes).",
    )
    max_request_body_routes: dict[str, int] = Field(
        default_factory=dict,
        description="Body limits (bytes) per path template, e.g. {\"/v1/organisations\": 3145728}, for routes the "
        "gateway is configured to pass larger bodies to; they override the route's own and the default limit.",
    )
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
    production_required: ClassVar[tuple[str, ...]] = ("kafka_bootstrap", "mongodb_url")
    #: Whether the service signs or encrypts with `secret_key` (then production refuses a placeholder there);
    #: a service that never reads it says False, and its deployment passes none.
    requires_secret_key: ClassVar[bool] = True

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

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_algorithms(cls, value: list[str]) -> list[str]:
        from ksbb_kit.auth import SUPPORTED_ALGORITHMS

        wrong = sorted(set(value) - SUPPORTED_ALGORITHMS)
        if wrong or not value:
            raise ValueError(f"{wrong or 'an empty list'} not allowed; choose from {sorted(SUPPORTED_ALGORITHMS)}")
        return value

    @property
    def static_issuer_trusted(self) -> bool:
        """Whether tokens of jwt_issuer (keys at jwks_url) are accepted: the enabled development issuer, or a
        provider's JWKS URL configured without discovery. A JWKS file alone is never enough."""
        return self.dev_issuer_enabled or self.jwks_url.startswith(("https://", "http://"))

    def _token_issuer_problems(self) -> list[str]:
        problems = []
        if self.dev_issuer_enabled:
            problems.append(f"dev_issuer_enabled must be false in production ({self.env_names('dev_issuer_enabled')})")
        fixed = {"jwks_url", "jwt_issuer"} <= self.model_fields_set
        if not self.oidc_issuer and not fixed:
            problems.append(
                f"no token issuer: set oidc_issuer ({self.env_names('oidc_issuer')}) to the identity provider's "
                f"issuer URL, or both {self.env_names('jwt_issuer')} and {self.env_names('jwks_url')} "
                "for a provider without discovery"
            )
        if "jwks_url" in self.model_fields_set and not self.jwks_url.startswith(("https://", "http://")):
            problems.append(f"jwks_url must be an http(s) URL in production; a JWKS file is the development issuer's "
                            f"({self.env_names('jwks_url')})")
        return problems

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
                if name == "secret_key" and not self.requires_secret_key:
                    continue
                plain = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
                if self._is_placeholder(name, plain):
                    problems.append(
                        f"{name} still has a placeholder, example or development value; "
                        f"set a real secret in {self.env_names(name)} outside development"
                    )
            problems += [f"{name} must be set in production ({self.env_names(name)})"
                         for name in self.production_required if name not in self.model_fields_set]
            problems += self._token_issuer_problems()
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
