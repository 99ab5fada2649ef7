"""Versioned event models, one per event type, and the type registry."""

from __future__ import annotations

from ksbb_contracts.events.base import EVENT_TYPES, Event, event_class, parse_event
from ksbb_contracts.events.notifier import *  # noqa: F403
from ksbb_contracts.events.pledges import *  # noqa: F403
from ksbb_contracts.events.registry import *  # noqa: F403

__all__ = ["EVENT_TYPES", "Event", "event_class", "parse_event"]
