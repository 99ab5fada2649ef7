"""Generic tools read our topics unchanged: the official CloudEvents SDKs' Kafka bindings, with their own mode
detection, read the records a running service published to the real broker (ADR 0001)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings import kafka as cloudevents_kafka
from ksbb_contracts import TYPE_HEADER, CloudEvent
from ksbb_contracts.events.registry import OrganisationContactRecorded, OrganisationRegistered
from ksbb_contracts.topics import ORGANISATIONS, REGISTRY_CONTACTS
from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.kafka import end_offsets
from ksbb_kit.testing.service import start_service
from ksbb_kit.testing.waiting import eventually
from ksbb_registry.bootstrap import create_app
from ksbb_registry.settings import RegistrySettings

pytestmark = pytest.mark.integration
JAVA_READER = Path(__file__).parent / "java"
ORGANISATION = {
    "name": "Lembaga Interop",
    "kind": "ngo",
    "contact": {"name": "Sekretariat", "email": "kontak@interop.example", "phone": "021-5551234"},
    "area_codes": ["31.71"],
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def published(module_kit_env: dict[str, Any], dev_issuer: DevIssuer) -> AsyncIterator[dict[str, list[Any]]]:
    """The registry, run for real, registers an organisation; the raw records it published, per topic."""
    settings = RegistrySettings(**module_kit_env)
    topics = [settings.topic(ORGANISATIONS.name), settings.topic(REGISTRY_CONTACTS.name)]
    async with start_service(create_app, settings) as service:
        token = dev_issuer.token(Role.ADMIN, subject="admin-interop")
        created = await service.client.post("/v1/organisations", json=ORGANISATION,
                                            headers={"authorization": f"Bearer {token}"})
        assert created.status_code == 201, created.text
        await read_records(settings.kafka_bootstrap, topics, expected=2)
    # Stopped: the topics hold what they hold for good (the registration, and a restatement of the organisation
    # when the anti-entropy pass that runs at start-up came after it), so every reader can be asked for all of it.
    total = sum([sum((await end_offsets(settings.kafka_bootstrap, topic)).values()) for topic in topics])
    records = await read_records(settings.kafka_bootstrap, topics, expected=total)
    yield {"bootstrap": [settings.kafka_bootstrap], **records}


async def read_records(bootstrap: str, topics: list[str], *, expected: int) -> dict[str, list[Any]]:
    """Every record of some topics, once `expected` records (in total) are there."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    seen: dict[str, list[Any]] = {topic: [] for topic in topics}
    try:
        async def enough() -> bool:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    seen[record.topic].append(record)
            return sum(map(len, seen.values())) >= expected

        await eventually(enough, within=60, what=f"{expected} records on {topics}")
    finally:
        await consumer.stop()
    return seen


async def test_python_sdk_reads_our_records_with_its_own_mode_detection(published: dict[str, list[Any]]) -> None:
    records = [record for topic, rs in published.items() if topic != "bootstrap" for record in rs]
    types = [CloudEvent.from_bytes(record.value).type for record in records]
    assert {OrganisationRegistered.event_type, OrganisationContactRecorded.event_type} <= set(types)
    for event_type, record in zip(types, records, strict=True):
        headers = {name: value for name, value in record.headers}
        assert not [name for name in headers if name.lower().startswith("ce_")], "structured mode: no ce_ headers"
        assert headers[TYPE_HEADER].decode() == event_type, "the routing header names the type"
        ours = CloudEvent.from_bytes(record.value)
        message = cloudevents_kafka.KafkaMessage(headers=headers, key=record.key, value=record.value)
        read = cloudevents_kafka.from_kafka_event(message)  # the SDK decides binary or structured itself
        assert (read.get_id(), read.get_type(), read.get_source(), read.get_subject()) == (
            ours.id, event_type, ours.source, ours.subject)
        assert read.get_data() == ours.data
        assert read.get_time() == ours.time
        assert read.get_extension("partitionkey") == record.key.decode() == ours.subject


@pytest.fixture(scope="module")
def java_reader() -> list[str]:
    """The Java reader built with Maven (the SDK and its JSON format from Maven Central): its java command."""
    mvn = shutil.which("mvn")
    java = shutil.which("java")
    assert mvn and java, "Maven and Java 17+ are required (see README)"
    build = subprocess.run(
        [mvn, "-q", "-B", "compile", "dependency:build-classpath", "-Dmdep.outputFile=target/classpath.txt"],
        cwd=JAVA_READER, capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    classpath = (JAVA_READER / "target" / "classpath.txt").read_text().strip()
    return [java, "-cp", f"{JAVA_READER / 'target' / 'classes'}:{classpath}", "id.ksbb.interop.ReadTopic"]


async def test_java_sdk_reads_our_records(published: dict[str, list[Any]], java_reader: list[str]) -> None:
    bootstrap = published["bootstrap"][0]
    for topic, records in published.items():
        if topic == "bootstrap":
            continue
        run = await asyncio.to_thread(
            subprocess.run, [*java_reader, bootstrap, topic, str(len(records)), "60"],
            capture_output=True, text=True, timeout=180,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        read = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        ours = [CloudEvent.from_bytes(r.value) for r in records]
        assert [(e["id"], e["type"], e["source"], e["subject"], e["key"]) for e in read] == [
            (o.id, o.type, o.source, o.subject, o.subject) for o in ours]
        assert [e["data"] for e in read] == [o.data for o in ours]
        assert all(e["specversion"] == "V1" or e["specversion"] == "1.0" for e in read)
        assert all(e["datacontenttype"] == "application/json" for e in read)
