"""Request and response models of the notifier's HTTP API."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime

from ksbb_contracts import limits as L
from ksbb_contracts.areas import areas
from ksbb_contracts.limits import StrictFlag, StrictNumber
from ksbb_contracts.vocab import RecipientKind
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ksbb_notifier.domain.deliveries import Delivery, DeliveryStatus
from ksbb_notifier.domain.endpoints import Endpoint

EVENT_GLOB = re.compile(r"^[a-z0-9_.*?\[\]!-]{1,100}$")


def _check_globs(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    for pattern in value:
        if not EVENT_GLOB.match(pattern):
            raise ValueError(f"not an event-type pattern: {pattern!r} (e.g. ksbb.pledge.* )")
    return sorted(set(value))


def _check_kotas(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    known = {area.code for area in areas().children("31")}
    for code in value:
        if code not in known:
            raise ValueError(f"unknown kota code {code!r}; use one of {', '.join(sorted(known))}")
    return sorted(set(value))


class _Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("event_types", check_fields=False)
    @classmethod
    def _globs(cls, value: list[str] | None) -> list[str] | None:
        return _check_globs(value)

    @field_validator("kota_codes", check_fields=False)
    @classmethod
    def _kotas(cls, value: list[str] | None) -> list[str] | None:
        return _check_kotas(value)


class EndpointCreate(_Filters):
    """A new webhook endpoint (subscription)."""

    url: str = Field(
        min_length=L.WEBHOOK_URL[0], max_length=L.WEBHOOK_URL[1], description="https URL that receives POSTed events."
    )
    description: str | None = Field(default=None, max_length=L.WEBHOOK_DESCRIPTION_MAX)
    organisation_id: str | None = Field(
        default=None,
        max_length=L.ID[1],
        description="Owning organisation; facilitators may only use their own (default), "
        "admins may leave it empty to receive every event.",
    )
    event_types: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Globs over event types, e.g. ksbb.pledge.*; empty = all.",
    )
    kota_codes: list[str] = Field(default_factory=list, max_length=6, description="Kota codes, e.g. 31.71.")
    recipient_kinds: list[RecipientKind] = Field(default_factory=list, max_length=len(RecipientKind))
    rate_limit_per_second: StrictNumber | None = Field(default=None, gt=0, le=L.WEBHOOK_RATE_MAX)


class EndpointUpdate(_Filters):
    """Changes to an endpoint; omitted fields stay as they are."""

    url: str | None = Field(default=None, min_length=L.WEBHOOK_URL[0], max_length=L.WEBHOOK_URL[1])
    description: str | None = Field(default=None, max_length=L.WEBHOOK_DESCRIPTION_MAX)
    event_types: list[str] | None = Field(default=None, max_length=50)
    kota_codes: list[str] | None = Field(default=None, max_length=6)
    recipient_kinds: list[RecipientKind] | None = Field(default=None, max_length=len(RecipientKind))
    rate_limit_per_second: StrictNumber | None = Field(default=None, gt=0, le=L.WEBHOOK_RATE_MAX)
    enabled: StrictFlag | None = None


class EndpointPublic(BaseModel):
    """An endpoint as its owners see it (never the secret)."""

    id: str
    organisation_id: str | None
    url: str
    description: str | None
    event_types: list[str]
    kota_codes: list[str]
    recipient_kinds: list[str]
    rate_limit_per_second: float | None
    enabled: bool
    disabled_reason: str | None = None
    secret_hint: str
    previous_secret_valid_until: datetime | None = None
    failing_since: datetime | None = None
    version: int
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointPublic):
    """The new endpoint with its signing secret — shown this once only."""

    secret: str = Field(description="whsec_… signing secret; store it now, it is never shown again.")


class EndpointList(BaseModel):
    """Endpoints the caller may see."""

    items: list[EndpointPublic]


class SecretRotated(BaseModel):
    """A new signing secret; the previous one stays valid until `previous_secret_valid_until`."""

    endpoint_id: str
    secret: str
    previous_secret_valid_until: datetime


class TestEventSent(BaseModel):
    """The queued test message."""

    message_id: str
    delivery_id: str
    type: str


class AttemptPublic(BaseModel):
    """One HTTP attempt of a delivery."""

    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int
    response_body: str | None = Field(default=None, description="First 1 KB of the response.")
    error: str | None = None


class DeliveryPublic(BaseModel):
    """One message's delivery to one endpoint, with its attempt log."""

    id: str
    message_id: str
    endpoint_id: str
    event_type: str
    status: str = Field(description="pending, succeeded or failed.")
    attempts: int
    next_attempt_at: datetime | None
    failure_reason: str | None = None
    last_status_code: int | None = None
    created_at: datetime
    updated_at: datetime
    attempt_log: list[AttemptPublic]


class DeliveryPage(BaseModel):
    """A page of the delivery log, newest first."""

    items: list[DeliveryPublic]
    next_cursor: str | None


class RecoverRequest(BaseModel):
    """Requeue every failed delivery of messages created at or after `since`."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime


class RecoverResult(BaseModel):
    """How many failed deliveries were requeued."""

    requeued: int


def endpoint_public(endpoint: Endpoint) -> EndpointPublic:
    """The public view of an endpoint (never a secret)."""
    return EndpointPublic(
        id=endpoint.id,
        organisation_id=endpoint.organisation_id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        kota_codes=list(endpoint.kota_codes),
        recipient_kinds=list(endpoint.recipient_kinds),
        rate_limit_per_second=endpoint.rate_limit_per_second,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        secret_hint=endpoint.secret_hint,
        previous_secret_valid_until=endpoint.previous_secret_valid_until,
        failing_since=endpoint.failing_since,
        version=endpoint.version,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def delivery_public(delivery: Delivery) -> DeliveryPublic:
    """The public view of a delivery with its attempt log."""
    return DeliveryPublic(
        id=delivery.id,
        message_id=delivery.message_id,
        endpoint_id=delivery.endpoint_id,
        event_type=delivery.event_type,
        status=delivery.status.value,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status is DeliveryStatus.PENDING else None,
        failure_reason=delivery.failure_reason,
        last_status_code=delivery.last_status_code,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
        attempt_log=[AttemptPublic(**asdict(entry)) for entry in delivery.attempt_log],
    )
