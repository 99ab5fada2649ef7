"""Base class of every event and the registry of event types."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ksbb_contracts.envelope import CloudEvent
from ksbb_contracts.topics import Topic

EVENT_TYPES: dict[str, type[Event]] = {}


class Event(BaseModel):
    """An event's data; subclasses name their CloudEvents type, topic and subject field."""

    # Unknown fields are ignored so additive changes never break older consumers.
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    topic: ClassVar[Topic]
    subject_field: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if event_type:
            if event_type in EVENT_TYPES:
                raise TypeError(f"duplicate event type {event_type}")
            EVENT_TYPES[event_type] = cls

    @property
    def subject(self) -> str:
        """The aggregate id: the CloudEvents subject and the Kafka key."""
        value: Any = self
        for part in self.subject_field.split("."):
            value = getattr(value, part)
        return str(value)


def event_class(event_type: str) -> type[Event]:
    """The model class of an event type; KeyError when unknown."""
    return EVENT_TYPES[event_type]


def parse_event(envelope: CloudEvent) -> Event:
    """Validate an envelope's data against its event model."""
    return event_class(envelope.type).model_validate(envelope.data)
