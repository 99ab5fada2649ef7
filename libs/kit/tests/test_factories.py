"""The shared test toolbox: every contract event has a factory whose output matches the published schemas."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from cloudevents.core.bindings import kafka as cloudevents_kafka
from ksbb_contracts import EVENT_TYPES, CloudEvent, parse_event
from ksbb_contracts.events import NeedFulfilled, NeedOpened, PledgeDelivered, RecipientActivated, RecipientSuspended
from ksbb_contracts.vocab import NeedStatus, PledgeStatus, RecipientStatus
from ksbb_kit.consumer import EventDispatcher, EventRouter
from ksbb_kit.testing.factories import (
    FACTORIES,
    KELURAHAN,
    consumed_record,
    envelope,
    every_event,
    make_event,
    need_public,
    pledge_public,
)
from ksbb_kit.testing.waiting import eventually
from pydantic import ValidationError

pytestmark = pytest.mark.unit
SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "events"


def _schema(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((SCHEMAS / f"{name}.json").read_text())
    return loaded


def test_every_contract_event_type_has_a_factory() -> None:
    assert set(FACTORIES) == set(EVENT_TYPES.values()), "add the missing event types to FACTORIES"
    assert sorted(e.event_type for e in every_event()) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_factory_output_is_valid_against_the_exported_schema(event_type: str) -> None:
    event = make_event(event_type)
    wrapped = envelope(event)
    document = json.loads(wrapped.to_bytes())
    jsonschema.validate(document, _schema("cloudevent.envelope"))
    jsonschema.validate(document["data"], _schema(event_type))
    assert document["type"] == event_type and document["subject"] == event.subject
    assert document["source"] == f"/ksbb/{event.topic.owner}"
    assert parse_event(CloudEvent.from_bytes(wrapped.to_bytes())) == event
    # The reference CloudEvents SDK reads the same record (Kafka binding, structured mode).
    record = consumed_record(wrapped)
    message = cloudevents_kafka.KafkaMessage(headers={k: v.encode() for k, v in record.headers.items()},
                                             key=record.key, value=record.value or b"")
    read = cloudevents_kafka.from_kafka_event(message)  # detects structured mode from the headers
    assert (read.get_id(), read.get_type(), read.get_subject()) == (wrapped.id, event_type, event.subject)
    assert read.get_data() == document["data"]


def test_lifecycle_events_carry_the_status_they_result_in() -> None:
    assert make_event(RecipientActivated).recipient.status is RecipientStatus.ACTIVE
    assert make_event(RecipientSuspended).recipient.status is RecipientStatus.SUSPENDED
    assert make_event(NeedFulfilled).need.status is NeedStatus.FULFILLED
    assert isinstance(make_event("ksbb.need.fulfilled.v1"), NeedFulfilled), "a CloudEvents type name works too"
    delivered = make_event(PledgeDelivered)
    assert delivered.pledge.status is PledgeStatus.DELIVERED and delivered.received_quantity == 10


def test_overrides_replace_fields_and_merge_into_nested_snapshots() -> None:
    event = make_event(NeedOpened, need={"need_id": "ned_9", "quantity": 3})
    assert (event.need.need_id, event.need.quantity, event.need.kelurahan_code) == ("ned_9", 3, KELURAHAN)
    assert event.subject == "ned_9"
    replaced = make_event(NeedOpened, need=need_public(need_id="ned_7"), occurred_at=datetime(2026, 2, 1, tzinfo=UTC))
    assert replaced.need.need_id == "ned_7" and envelope(replaced).time == datetime(2026, 2, 1, tzinfo=UTC)
    two_levels = make_event(RecipientActivated, recipient={"beneficiaries": {"households": 3}})
    assert two_levels.recipient.beneficiaries.households == 3
    assert two_levels.recipient.beneficiaries.people == 160, "the other nested fields keep their defaults"
    assert pledge_public(quantity=4).quantity == 4


def test_unknown_or_invalid_overrides_fail_loudly() -> None:
    with pytest.raises(TypeError, match="quantityy"):
        make_event(NeedOpened, need={"quantityy": 3})
    with pytest.raises(TypeError, match="colour"):
        make_event(NeedOpened, colour="red")
    with pytest.raises(ValidationError):
        make_event(NeedOpened, need={"quantity": 0})
    with pytest.raises(KeyError):
        make_event("ksbb.unknown.happened.v1")


def test_a_consumed_record_reaches_the_handler_of_its_type() -> None:
    router = EventRouter("publisher")
    seen: list[tuple[str, str]] = []

    @router.on(NeedOpened)
    async def opened(event: NeedOpened, wrapped: CloudEvent) -> None:
        seen.append((event.need.need_id, wrapped.id))

    class NoDeadLetters:
        async def send(self, topic: str, key: str | None, value: bytes | None, headers: dict[str, str]) -> None:
            raise AssertionError(f"unexpected dead letter on {topic}")

    dispatcher = EventDispatcher(router, NoDeadLetters(), group="t.publisher", topic_prefix="t.")
    wrapped = envelope(make_event(NeedOpened), event_id="evt_1")
    record = consumed_record(wrapped, prefix="t.", offset=5)
    assert record.topic == "t.ksbb.registry.needs" and record.key == "ned_1"
    assert asyncio.run(dispatcher.handle(record)) == "handled"
    assert seen == [("ned_1", "evt_1")]


def test_eventually_returns_the_first_truthy_value_and_names_what_did_not_hold() -> None:
    answers = iter([None, 0, "ready"])
    assert asyncio.run(eventually(lambda: next(answers), within=5, interval=0)) == "ready"

    def broken() -> bool:
        raise KeyError("missing")

    expected = r"the projection did not hold within 0s: last error KeyError\('missing'\)"
    with pytest.raises(AssertionError, match=expected):
        asyncio.run(eventually(broken, within=0.05, interval=0.01, what="the projection"))
