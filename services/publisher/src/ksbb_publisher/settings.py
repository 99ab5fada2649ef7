"""Settings of the publisher service (environment prefix KSBB_PUBLISHER_, falling back to KSBB_)."""

from __future__ import annotations

from typing import ClassVar

from ksbb_kit.settings import KitSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class PublisherSettings(KitSettings):
    """Every setting of the publisher service."""

    model_config = SettingsConfigDict(env_prefix="KSBB_PUBLISHER_", extra="ignore")
    service_name: ClassVar[str] = "publisher"

    http_port: int = 8104
    cache_max_age_seconds: int = Field(default=15, ge=0, description="Cache-Control max-age of public GETs.")
    sse_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="Comment line sent to idle SSE clients."
    )
    sse_queue_size: int = Field(
        default=256, ge=1, description="Entries buffered per SSE client before it is dropped."
    )
    feed_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often the stream looks for entries projected by other replicas."
    )
    snapshot_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the daily snapshot job wakes."
    )
    snapshot_chunk_bytes: int = Field(default=1024 * 1024, ge=1024)
    coverage_gap_days: int = Field(default=14, ge=1, le=365)
