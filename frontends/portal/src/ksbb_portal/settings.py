"""The portal's settings: `KSBB_PORTAL_` variables with the shared `KSBB_` ones as fallback."""

from __future__ import annotations

from typing import ClassVar

from ksbb_kit.settings import KitSettings
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict


class PortalSettings(KitSettings):
    """Where the portal runs, where the public API and the identity provider are, and how sessions behave."""

    model_config = SettingsConfigDict(env_prefix="KSBB_PORTAL_", extra="ignore", env_file=None)
    service_name: ClassVar[str] = "portal"
    # Production must name where the API, the provider and the database are; Kafka is never used.
    production_required: ClassVar[tuple[str, ...]] = ("mongodb_url", "api_url", "public_origin")

    http_port: int = 8105
    root_path: str = Field(
        default="/portal", pattern=r"^(/[A-Za-z0-9._~-]+)+$",
        description="Path prefix the gateway serves the portal under (the gateway passes it on unchanged).",
    )
    api_url: str = Field(
        default="http://127.0.0.1:8100",
        description="The gateway: every call to the public API goes through it with the user's access token.",
    )
    api_bind_address: str | None = Field(
        default=None,
        description="Local address the portal calls the gateway from; the gateway believes the portal's "
        "X-Forwarded-For (the browser's address, for per-client rate limits) only from this address.",
    )
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    public_cache_seconds: float = Field(
        default=5.0, ge=0, le=60,
        description="Answers to anonymous GETs that the API marks `public, max-age` are reused this long at most "
        "(never longer than max-age); 0 turns the reuse off.",
    )
    public_origin: str = Field(
        default="http://127.0.0.1:8100", pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description="Origin browsers reach the gateway at; the sign-in callback and sign-out return there.",
    )
    oidc_client_id: str = Field(default="ksbb-portal", description="The portal's confidential client.")
    oidc_client_secret: SecretStr = Field(
        default=SecretStr("dev-only-ksbb-portal-secret"),
        description="Secret of oidc_client_id (the realm file's value is development-only; refused in production).",
    )
    oidc_discovery_url: str | None = Field(
        default=None,
        description="Where the portal itself reads the provider's discovery document when it cannot use the "
        "issuer URL browsers use (containers); default: <oidc_issuer>/.well-known/openid-configuration.",
    )
    oidc_scope: str = "openid profile email"
    session_idle_minutes: int = Field(default=30, ge=1, description="A session unused this long ends.")
    session_max_hours: float = Field(default=10.0, gt=0, description="No session lives longer than this.")
    login_minutes: int = Field(default=10, ge=1, description="How long a started sign-in may take.")
    cookie_name: str = Field(default="ksbb_portal", pattern=r"^[A-Za-z0-9_]+$")
    cookie_secure: bool | None = Field(
        default=None, description="Secure cookies; default: when the browser's request arrived over HTTPS."
    )
    refresh_margin_seconds: int = Field(
        default=30, ge=0, description="Access tokens this close to expiry are refreshed before a call."
    )
    session_cache_seconds: float = Field(
        default=2.0, ge=0, le=30,
        description="Sessions read recently are kept in process; a change made on any replica (sign-out included) "
        "reaches every replica within this many seconds (each reads the change notes every third of it). "
        "0: every request reads its session from the database.",
    )
    cleanup_interval_seconds: float = Field(default=600.0, gt=0, description="How often ended sessions are deleted.")
    vendor_dir: str | None = Field(
        default=None,
        description="Folder holding htmx.min.js (default: frontends/portal/node_modules/htmx.org/dist, installed "
        "by `npm ci`; the container image copies it elsewhere).",
    )

    @field_validator("api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def _token_issuer_problems(self) -> list[str]:
        """The portal signs people in with an OpenID Connect provider; production needs its issuer."""
        problems = super()._token_issuer_problems()
        if not self.oidc_issuer and not any("oidc_issuer" in p for p in problems):
            problems.append(f"oidc_issuer must be set in production ({self.env_names('oidc_issuer')})")
        return problems

    @property
    def redirect_uri(self) -> str:
        """Where the provider sends the browser back with the authorisation code."""
        return f"{self.public_origin}{self.root_path}/auth/callback"

    @property
    def home_url(self) -> str:
        """The portal's start page as browsers see it."""
        return f"{self.public_origin}{self.root_path}/"
