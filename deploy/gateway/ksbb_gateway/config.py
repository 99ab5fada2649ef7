"""The gateway's one configuration source (gateway.toml) as typed settings, with per-target values."""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HERE = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = HERE / "gateway.toml"
TargetName = Literal["local", "compose", "k8s"]
_SIZE = re.compile(r"^[0-9]+[kKmMgG]?$")
_ADDRESS = re.compile(r"^([A-Za-z0-9.-]+:)?[0-9]{1,5}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _size(value: str) -> str:
    if not _SIZE.match(value):
        raise ValueError(f"{value!r} is not an nginx size such as 512k or 1m")
    return value.lower()


def size_in_bytes(value: str) -> int:
    """An nginx size (`512k`, `1m`) in bytes."""
    factor = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(value[-1].lower(), 1)
    return int(value.rstrip("kKmMgG")) * factor


class PublicPage(_Model):
    """Who serves `/` and the page's assets."""

    owner: str
    prefixes: list[str] = Field(default_factory=list)


class Frontend(_Model):
    """A browser app behind the gateway, not described by OpenAPI: its path prefix goes to its own upstream,
    which receives the path without the prefix (it runs with that prefix as its root path)."""

    prefix: str = Field(pattern=r"^/[a-z][a-z0-9-]*/$")


class Internal(_Model):
    """Routes never exposed through the gateway."""

    paths: list[str]
    tags: list[str]


class Docs(_Model):
    """Each service's own docs under `<prefix>/<service>`."""

    prefix: str = Field(pattern=r"^/[a-z]+$")
    service_pages: list[str]

    def root_path(self, service: str) -> str:
        """The root_path a service runs with behind the gateway."""
        return f"{self.prefix}/{service}"


class LargerBody(_Model):
    """A route (OpenAPI path template) allowed a larger body than the default."""

    path: str
    body: str

    _check = field_validator("body")(_size)


class Limits(_Model):
    """Body size and timeouts."""

    body: str
    larger_bodies: list[LargerBody] = Field(default_factory=list)
    connect_timeout_seconds: int = Field(gt=0)
    read_timeout_seconds: int = Field(gt=0)
    stream_read_timeout_seconds: int = Field(gt=0)
    streams_per_client: int = Field(gt=0)

    _check = field_validator("body")(_size)


class PerClientRate(_Model):
    """Requests per second per client address."""

    per_second: int = Field(gt=0)
    burst: int = Field(ge=0)

    @property
    def retry_after_seconds(self) -> int:
        """When a refused client may try again."""
        return max(1, math.ceil(1 / self.per_second))


class AnonymousWriteRate(_Model):
    """Writes without credentials per minute per client address."""

    per_minute: int = Field(gt=0)
    burst: int = Field(ge=0)

    @property
    def retry_after_seconds(self) -> int:
        """When a refused client may try again (one request interval)."""
        return max(1, math.ceil(60 / self.per_minute))


class RateLimits(_Model):
    """The rate-limit zones."""

    per_client: PerClientRate
    anonymous_writes: AnonymousWriteRate


class Cors(_Model):
    """Cross-origin rules, answered entirely by the gateway."""

    allowed_origins: list[str]
    allow_credentials: bool
    max_age_seconds: int = Field(ge=0)
    allowed_methods: list[str]
    allowed_headers: list[str]
    exposed_headers: list[str]

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*" or not re.match(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$", origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port]); wildcards are not allowed")
        return value


class Headers(_Model):
    """Security headers."""

    referrer_policy: str
    frame_options: str
    hsts: str
    csp_public_page: str
    csp_docs: str
    csp_api: str


class Gzip(_Model):
    """Compression of responses."""

    min_length: int = Field(ge=0)
    types: list[str]

    @field_validator("types")
    @classmethod
    def _never_streams(cls, value: list[str]) -> list[str]:
        if "text/event-stream" in value:
            raise ValueError("text/event-stream must never be compressed (it would be buffered)")
        return value


class Target(_Model):
    """Where the gateway runs and what it talks to."""

    listen: str
    health_listen: str | None = None
    proxy_bind: str | None = None
    workers: str = "auto"
    upstreams: dict[str, str]
    trusted_proxies: list[str] = Field(default_factory=list)
    tls_offloaded: bool = False
    cors_allowed_origins: list[str] | None = None
    host: str | None = None
    tls_secret: str | None = None

    @field_validator("listen", "health_listen")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError(f"{value!r} is not [host:]port")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value


class GatewayConfig(_Model):
    """Everything in gateway.toml."""

    services: list[str]
    public_page: PublicPage
    frontends: dict[str, Frontend] = Field(default_factory=dict)
    internal: Internal
    docs: Docs
    limits: Limits
    rate_limits: RateLimits
    cors: Cors
    headers: Headers
    gzip: Gzip
    targets: dict[TargetName, Target]

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        if self.public_page.owner not in self.services:
            raise ValueError(f"public_page.owner {self.public_page.owner!r} is not one of the services")
        overlap = set(self.services) & set(self.frontends)
        if overlap:
            raise ValueError(f"{sorted(overlap)} cannot be both a service and a frontend")
        for name, target in self.targets.items():
            expected = [*self.services, *self.frontends]
            if set(target.upstreams) != set(expected):
                raise ValueError(f"targets.{name}.upstreams must name exactly the services and frontends {expected}")
            if target.cors_allowed_origins is not None:
                Cors._origins(target.cors_allowed_origins)
        return self

    def target(self, name: str) -> Target:
        """One target's settings."""
        if name not in self.targets:
            raise KeyError(f"no target {name!r} in gateway.toml (have {sorted(self.targets)})")
        return self.targets[name]

    def origins_for(self, target: Target) -> list[str]:
        """The CORS allow-list of a target (its own list, else the shared one)."""
        return target.cors_allowed_origins if target.cors_allowed_origins is not None else self.cors.allowed_origins

    def with_changes(self, **changes: Any) -> GatewayConfig:
        """A validated copy with nested changes, e.g. `{"rate_limits": {"per_client": {"per_second": 1}}}`."""
        return GatewayConfig.model_validate(_deep_merge(self.model_dump(), changes))


def _deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path = DEFAULT_CONFIG) -> GatewayConfig:
    """Read and validate gateway.toml."""
    with path.open("rb") as fh:
        return GatewayConfig.model_validate(tomllib.load(fh))
