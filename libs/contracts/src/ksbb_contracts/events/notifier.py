"""Events of the notifier service: webhook delivery outcomes."""

from __future__ import annotations

from datetime import datetime

from ksbb_contracts import topics
from ksbb_contracts.events.base import Event

__all__ = ["WebhookDeliveryFailed", "WebhookEndpointDisabled"]


class WebhookDeliveryFailed(Event):
    """A webhook message exhausted its retries for one endpoint."""

    event_type = "ksbb.webhook.delivery_failed.v1"
    topic = topics.WEBHOOKS
    subject_field = "endpoint_id"

    endpoint_id: str
    organisation_id: str | None
    message_id: str
    message_type: str
    attempts: int
    occurred_at: datetime


class WebhookEndpointDisabled(Event):
    """An endpoint was disabled (410 Gone, or failing for days)."""

    event_type = "ksbb.webhook.endpoint_disabled.v1"
    topic = topics.WEBHOOKS
    subject_field = "endpoint_id"

    endpoint_id: str
    organisation_id: str | None
    reason: str
    occurred_at: datetime
