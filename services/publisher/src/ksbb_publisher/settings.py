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
    requires_secret_key: ClassVar[bool] = False  # nothing here is signed or encrypted with it

    http_port: int = 8104
    cache_max_age_seconds: int = Field(default=15, ge=0, description="Cache-Control max-age of public GETs.")
    sse_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="Comment line sent to idle SSE clients."
    )
    sse_queue_size: int = Field(
        default=256, ge=1, description="Entries buffered per SSE client before it is dropped."
    )
    sse_max_replay: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="Entries one resume replays at most; a client further behind gets a `reset` event and reloads.",
    )
    sse_max_streams_per_client: int = Field(
        default=4, ge=1, description="Live streams one client address may hold open at once (429 beyond)."
    )
    sse_max_streams: int = Field(
        default=500, ge=1, description="Live streams one replica holds open at once (503 beyond)."
    )
    sse_retry_after_seconds: int = Field(
        default=5, ge=1, description="Retry-After of a refused live stream."
    )
    feed_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often the stream looks for entries projected by other replicas."
    )
    snapshot_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the daily snapshot job wakes."
    )
    snapshot_chunk_bytes: int = Field(default=1024 * 1024, ge=1024)
    consume_batch_size: int = Field(
        default=500, ge=1, le=10_000,
        description="Records projected per batch (one write per changed document per batch); a rebuild reads "
        "ten times as many at once.",
    )
    coverage_gap_days: int = Field(default=14, ge=1, le=365)
