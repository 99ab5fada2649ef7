"""Every consumer decides about every event type on the topics it reads: it handles it, or the contracts list it
as ignored by that consumer (ksbb_contracts.topics.IGNORED_EVENT_TYPES). Anything else would be dead-lettered,
so a new event type added to a topic without a decision in each consumer fails here, before it ships."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from ksbb_contracts import EVENT_TYPES
from ksbb_contracts.topics import IGNORED_EVENT_TYPES, topics_consumed_by

pytestmark = pytest.mark.integration
SERVICES = ("registry", "pledges", "notifier", "publisher")


@pytest.mark.parametrize("service", SERVICES)
def test_each_event_type_on_a_consumed_topic_is_handled_or_listed_as_ignored(
    service: str, kit_env: dict[str, Any]
) -> None:
    bootstrap = importlib.import_module(f"ksbb_{service}.bootstrap")
    settings_module = importlib.import_module(f"ksbb_{service}.settings")
    settings_class = next(value for value in vars(settings_module).values()
                          if isinstance(value, type) and getattr(value, "service_name", None) == service)
    router = bootstrap.create_app(settings_class(**kit_env)).state.runtime.router
    assert router is not None and router.service == service
    assert router.undecided_types() == [], f"{service} would dead-letter these types"
    read = {topic.name for topic in topics_consumed_by(service)}
    on_its_topics = {t for t, model in EVENT_TYPES.items() if model.topic.name in read}
    assert set(router.handlers) | IGNORED_EVENT_TYPES[service] == on_its_topics
    assert not set(router.handlers) & IGNORED_EVENT_TYPES[service], "a type is either handled or ignored"
