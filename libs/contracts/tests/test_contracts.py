"""Contract tests: committed schemas match the models, topics and names follow the rules."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ksbb_contracts import EVENT_TYPES, TOPICS, CloudEvent, parse_event
from ksbb_contracts.events.registry import NeedPublic, RecipientPublic
from ksbb_contracts.schemas import main as export_schemas
from ksbb_contracts.schemas import render_schemas
from ksbb_contracts.topics import all_topics_with_dlqs

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]
CONFIDENTIAL_FIELDS = {"contact_name", "phone", "email", "street_address", "notes", "note"}


def test_committed_schemas_match_models() -> None:
    assert export_schemas(["--check", "--out", str(REPO / "docs" / "events")]) == 0, (
        "docs/events is stale: run `uv run ksbb-export-schemas`"
    )


def test_schema_check_detects_a_difference(tmp_path: Path) -> None:
    export_schemas(["--out", str(tmp_path)])
    victim = tmp_path / "ksbb.pledge.created.v1.json"
    victim.write_text(victim.read_text().replace('"quantity"', '"qty"'))
    assert export_schemas(["--check", "--out", str(tmp_path)]) == 1


def test_event_types_are_versioned_past_tense_names() -> None:
    for event_type in EVENT_TYPES:
        assert re.fullmatch(r"ksbb\.[a-z_]+\.[a-z_]+\.v\d+", event_type), event_type
        verb = event_type.split(".")[2]
        assert verb.endswith("ed") or verb in {"expiring"}, f"{event_type} is not past tense"


def test_each_topic_has_one_owner_and_events_stay_with_their_owner() -> None:
    owners_by_topic: dict[str, set[str]] = {}
    for model in EVENT_TYPES.values():
        owners_by_topic.setdefault(model.topic.name, set()).add(model.topic.owner)
    assert all(len(owners) == 1 for owners in owners_by_topic.values())
    assert set(owners_by_topic) <= set(TOPICS)


def test_confidential_fields_only_on_confidential_topics() -> None:
    for event_type, model in EVENT_TYPES.items():
        fields = set(model.model_json_schema().get("properties", {}))
        nested = render_schemas()[f"{event_type}.json"]
        if not model.topic.confidential:
            assert not fields & CONFIDENTIAL_FIELDS, event_type
            for name in CONFIDENTIAL_FIELDS:
                assert f'"{name}"' not in nested, f"{event_type} carries {name}"


def test_confidential_topics_are_compacted_and_domain_topics_keep_events() -> None:
    for topic in TOPICS.values():
        if topic.confidential:
            assert topic.config()["cleanup.policy"] == "compact"
        else:
            assert topic.config()["retention.ms"] == "-1"
    names = [t.name for t in all_topics_with_dlqs()]
    assert "ksbb.pledges.ledger.registry.dlq" in names
    assert len(names) == len(set(names))


def test_envelope_round_trip_and_subject() -> None:
    need = NeedPublic(
        need_id="ned_1", recipient_id="rcp_1", organisation_id="org_1", kelurahan_code="31.71.01.1001",
        item="sembako", quantity=10, unit="paket", priority="high", needed_by="2026-12-01",
        status="open", version=1,
    )
    event = EVENT_TYPES["ksbb.need.opened.v1"](need=need, occurred_at=datetime.now(UTC))
    assert event.subject == "ned_1"
    envelope = CloudEvent(id="e1", source="/ksbb/registry", type=event.event_type, subject=event.subject,
                          time=datetime.now(UTC), data=event.model_dump(mode="json"))
    again = CloudEvent.from_bytes(envelope.to_bytes())
    assert parse_event(again) == event


def test_unknown_fields_are_ignored_for_additive_changes() -> None:
    data = RecipientPublic(
        recipient_id="rcp_1", name="RW 01", kind="rw_rentan", organisation_id="org_1",
        kelurahan_code="31.71.01.1001", rw=1, beneficiaries={"households": 1, "people": 4},
        status="registered", version=1,
    ).model_dump(mode="json")
    data["added_later"] = "x"
    assert RecipientPublic.model_validate(data).recipient_id == "rcp_1"


def test_malformed_envelope_is_refused() -> None:
    with pytest.raises(ValueError):
        CloudEvent.from_bytes(b"not json")
    with pytest.raises(ValueError):
        CloudEvent.from_bytes(
            b'{"id": "1", "type": "Bad.Type", "source": "x", "subject": "s",'
            b' "time": "2026-01-01T00:00:00Z", "data": {}}'
        )


def test_contract_modules_import_each_other_without_a_circle() -> None:
    import grimp

    graph = grimp.build_graph("ksbb_contracts")
    modules = {m for m in graph.modules if m.startswith("ksbb_contracts")}
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in modules} for m in modules}
    assert "ksbb_contracts.events" in edges["ksbb_contracts.schemas"], "the graph sees the package's imports"

    def circle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            module, path = stack.pop()
            for imported in edges[module]:
                if imported == start:
                    return [*path, start]
                if imported not in path:
                    stack.append((imported, [*path, imported]))
        return None

    circles = [c for m in sorted(modules) if (c := circle_from(m))]
    assert not circles, f"import circle: {' -> '.join(circles[0])}"


def test_ignored_event_types_are_contract_types_on_topics_the_service_reads() -> None:
    from ksbb_contracts.topics import IGNORED_EVENT_TYPES, ignores_event_type, topics_consumed_by

    for service, ignored in IGNORED_EVENT_TYPES.items():
        read = {topic.name for topic in topics_consumed_by(service)}
        assert read, f"{service} reads no topic, so it has nothing to ignore"
        for event_type in ignored:
            assert event_type in EVENT_TYPES, f"{service} ignores {event_type}, which no contract defines"
            assert EVENT_TYPES[event_type].topic.name in read, f"{service} ignores {event_type} it never reads"
    assert not ignores_event_type("publisher", "ksbb.donor.renamed.v9"), "unknown types are never ignored"
