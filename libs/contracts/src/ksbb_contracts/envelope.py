"""CloudEvents 1.0 envelope in structured mode: the whole event is the Kafka record value."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Kafka header `content-type` for every record (CloudEvents Kafka binding, structured mode).
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
#: Kafka header naming the event type, for routing and filtering without parsing the value. Deliberately
#: outside the `ce_` namespace: a `ce_*` header tells CloudEvents SDKs the record is in binary mode (ADR 0001).
TYPE_HEADER = "ksbb-event-type"
#: The routing header records written before ADR 0001's revision carry; consumers still read those records.
LEGACY_TYPE_HEADER = "ce_type"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope; `subject` is the aggregate id and the Kafka key."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, description="Unique event id; consumers de-duplicate on it.")
    source: str = Field(min_length=1, description="URI-reference of the producing service, e.g. /ksbb/registry.")
    type: str = Field(pattern=r"^ksbb\.[a-z_]+\.[a-z_]+\.v[0-9]+$", description="ksbb.<aggregate>.<event>.v<N>")
    subject: str = Field(min_length=1, description="Aggregate id; also the Kafka record key.")
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    traceparent: str | None = Field(
        default=None, description="W3C trace context (CloudEvents distributed tracing extension)."
    )
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        """Serialise the envelope as the Kafka record value."""
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CloudEvent:
        """Parse a Kafka record value; raises pydantic.ValidationError or ValueError when malformed."""
        return cls.model_validate_json(raw)
