"""Settings of the notifier service (environment prefix KSBB_NOTIFIER_, falling back to KSBB_)."""

from __future__ import annotations

from typing import ClassVar

from ksbb_kit.settings import KitSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

#: Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_RETRY_SCHEDULE = [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


class NotifierSettings(KitSettings):
    """Every setting of the notifier service."""

    model_config = SettingsConfigDict(env_prefix="KSBB_NOTIFIER_", extra="ignore")
    service_name: ClassVar[str] = "notifier"

    http_port: int = 8103

    # -- webhooks --------------------------------------------------------------------------------
    retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE),
        min_length=1,
        description="Delay before each attempt; the first entry is the first attempt (0 = immediately).",
    )
    delivery_timeout_seconds: float = Field(default=15.0, gt=0)
    max_retry_after_seconds: float = Field(default=86400.0, gt=0, description="Cap on a receiver's Retry-After.")
    secret_rotation_overlap_hours: float = Field(default=24.0, ge=0)
    disable_after_failing_days: float = Field(default=5.0, gt=0)
    per_endpoint_concurrency: int = Field(default=4, ge=1)
    global_concurrency: int = Field(default=64, ge=1)
    dispatch_sweep_seconds: float = Field(default=1.0, gt=0)
    dispatcher_autostart: bool = Field(default=True, description="Run the delivery loop (tests drive it by hand).")
    insecure_http_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts that may use plain http (local development and tests).",
    )
    ssrf_allow_hosts: list[str] = Field(
        default_factory=list,
        description="Host names exempt from the private-address check.",
    )
    ssrf_allow_cidrs: list[str] = Field(
        default_factory=list,
        description="Networks exempt from the private-address check.",
    )

    response_body_max_bytes: int = Field(default=1024, ge=0)
    retention_days: float = Field(
        default=30.0, gt=0, description="Finished deliveries, their messages and sent e-mails are kept this long."
    )
    attempts_kept: int = Field(default=50, ge=1, description="Attempt log entries kept per delivery.")

    # -- e-mail ----------------------------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    mail_from: str = "KSBB Jakarta <noreply@ksbb.jakarta.go.id>"
    email_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [0.0, 30.0, 300.0, 1800.0, 7200.0, 21600.0],
        min_length=1,
    )
    mailer_autostart: bool = True

    @property
    def ssrf_exempt_hosts(self) -> list[str]:
        """Hosts exempt from the address check: the allow-list, plus the plain-http hosts in development
        (so `make run` can deliver to a receiver on 127.0.0.1; tests and production never get this)."""
        extra = self.insecure_http_hosts if self.env == "development" else []
        return [*self.ssrf_allow_hosts, *extra]
