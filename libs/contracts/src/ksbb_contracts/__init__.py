"""KSBB event contracts: the single source of truth for every Kafka message."""

from ksbb_contracts import limits  # the bounds of every public input field, one place
from ksbb_contracts.envelope import CONTENT_TYPE, TYPE_HEADER, CloudEvent
from ksbb_contracts.events import EVENT_TYPES, Event, event_class, parse_event
from ksbb_contracts.topics import TOPICS, Topic

__all__ = [
    "CONTENT_TYPE",
    "EVENT_TYPES",
    "TOPICS",
    "TYPE_HEADER",
    "CloudEvent",
    "Event",
    "Topic",
    "event_class",
    "limits",
    "parse_event",
]
