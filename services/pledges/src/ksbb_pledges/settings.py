"""Settings of the pledges service (environment prefix KSBB_PLEDGES_, falling back to KSBB_)."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from ksbb_kit.settings import KitSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ksbb_pledges.domain.lifecycle import ExpiryPolicy


class PledgesSettings(KitSettings):
    """Every setting of the pledges service."""

    model_config = SettingsConfigDict(env_prefix="KSBB_PLEDGES_", extra="ignore")
    service_name: ClassVar[str] = "pledges"
    requires_secret_key: ClassVar[bool] = False  # nothing here is signed or encrypted with it

    http_port: int = 8102
    confirm_window_hours: float = Field(default=48.0, gt=0, description="Time a pledge may wait for confirmation.")
    dispatch_grace_hours: float = Field(default=24.0, ge=0, description="Grace after the planned delivery day.")
    reminder_lead_hours: float = Field(default=12.0, ge=0, description="Remind the donor this long before expiry.")
    contact_access_days: float = Field(
        default=14.0,
        ge=0,
        le=365,
        description="How long after the delivery the donor may still read the recipient's contact (UU 27/2022).",
    )

    restate_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Anti-entropy: how often a page of ledgers is re-published so consumers repair diverged views.",
    )
    restate_page_size: int = Field(default=500, ge=1, le=10_000, description="Ledgers re-published per run.")
    pledge_restate_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Anti-entropy: how often a page of pledges is re-published (ksbb.pledge.restated.v1) so "
        "consumers repair diverged views.",
    )
    pledge_recovery_delay_seconds: float = Field(
        default=30, ge=1, le=3600,
        description="How old a pledge event must be before the service checks that its ledger still holds the "
        "pledge (and takes it back from the event when a database crash lost it): longer than the database "
        "takes to make an acknowledged write durable.",
    )
    pledge_restate_page_size: int = Field(default=500, ge=1, le=10_000, description="Pledges re-published per run.")

    @property
    def contact_after_delivery(self) -> timedelta:
        """How long the donor's access to the recipient's contact lasts after the delivery."""
        return timedelta(days=self.contact_access_days)

    @property
    def expiry_policy(self) -> ExpiryPolicy:
        """The expiry rule built from these settings."""
        return ExpiryPolicy(
            confirm_window=timedelta(hours=self.confirm_window_hours),
            dispatch_grace=timedelta(hours=self.dispatch_grace_hours),
            reminder_lead=timedelta(hours=self.reminder_lead_hours),
        )
