"""The kit's Kafka clients on a broker that demands SASL/SCRAM (and TLS) and enforces the rendered KafkaUser
ACLs: topic creation, the outbox's producer, the FastStream consumer and the lag query all log in; wrong
credentials or an unknown CA fail; each service's user can do what the contracts say and nothing else."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from faststream.kafka.annotations import KafkaMessage
from ksbb_contracts.topics import TOPICS, Topic
from ksbb_kit.kafka import KafkaConnection, KafkaRecordPublisher, consumer_lag, ensure_topics, make_broker
from ksbb_kit.settings import KitSettings
from pydantic import SecretStr

from tests.deploy.conftest import ScramBroker

pytestmark = pytest.mark.integration


async def _round_trip(connection: KafkaConnection) -> None:
    """Create a topic, publish with the outbox's producer, consume with the kit's broker, check the lag."""
    name = f"ksbb.scram.{uuid.uuid4().hex[:8]}"
    created = await ensure_topics(connection, [Topic(name, "registry", "SCRAM round trip", partitions=2)])
    assert created == [name]

    received: asyncio.Queue[tuple[str | None, bytes]] = asyncio.Queue()
    group = f"scram-{uuid.uuid4().hex[:6]}"
    broker = make_broker(connection, client_id="ksbb-scram-test")

    @broker.subscriber(name, group_id=group, auto_offset_reset="earliest")
    async def consume(message: KafkaMessage) -> None:
        raw = message.raw_message
        assert not isinstance(raw, tuple)
        await received.put((raw.key.decode() if raw.key else None, raw.value))

    publisher = KafkaRecordPublisher(connection, client_id="ksbb-scram-test")
    await broker.start()
    await publisher.start()
    try:
        for i in range(3):
            await publisher.send(name, f"key-{i}", f"value-{i}".encode(), {"content-type": "text/plain"})
        got = {await asyncio.wait_for(received.get(), timeout=60) for _ in range(3)}
        assert got == {(f"key-{i}", f"value-{i}".encode()) for i in range(3)}
        lag: dict[str, int] = {}
        for _ in range(60):  # the group commits after the handler returns
            lag = await consumer_lag(connection, group, [name])
            if lag.get(name) == 0:
                break
            await asyncio.sleep(0.5)
        assert lag == {name: 0}
    finally:
        await publisher.stop()
        await broker.stop()


async def test_scram_sha512_over_tls_round_trip(scram_broker: ScramBroker) -> None:
    user, password = scram_broker.admin_user
    settings = KitSettings(
        kafka_bootstrap=scram_broker.sasl_ssl, kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username=user,
        kafka_sasl_password=SecretStr(password), kafka_ssl_ca_file=str(scram_broker.ca_file),
    )
    await _round_trip(settings.kafka_connection)


async def test_scram_sha256_without_tls_round_trip(scram_broker: ScramBroker) -> None:
    user, password = scram_broker.sha256_user
    settings = KitSettings(
        kafka_bootstrap=scram_broker.sasl_plaintext, kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256", kafka_sasl_username=user, kafka_sasl_password=SecretStr(password),
    )
    await _round_trip(settings.kafka_connection)


async def test_wrong_password_is_refused(scram_broker: ScramBroker) -> None:
    user = next(iter(scram_broker.users))
    connection = KafkaConnection(scram_broker.sasl_plaintext, security_protocol="SASL_PLAINTEXT",
                                 sasl_mechanism="SCRAM-SHA-512", sasl_username=user, sasl_password="not-it")
    publisher = KafkaRecordPublisher(connection, client_id="ksbb-scram-test")
    with pytest.raises(KafkaError):
        await asyncio.wait_for(publisher.start(), timeout=60)
    assert not publisher.started


async def test_broker_certificate_from_another_ca_is_refused(scram_broker: ScramBroker) -> None:
    user, password = next(iter(scram_broker.users.items()))
    connection = KafkaConnection(scram_broker.sasl_ssl, security_protocol="SASL_SSL",
                                 sasl_mechanism="SCRAM-SHA-512", sasl_username=user, sasl_password=password,
                                 ssl_ca_file=str(scram_broker.other_ca_file))
    publisher = KafkaRecordPublisher(connection, client_id="ksbb-scram-test")
    with pytest.raises(KafkaError):
        await asyncio.wait_for(publisher.start(), timeout=60)



def _as(scram_broker: ScramBroker, service: str) -> KafkaConnection:
    """A service's own connection: its KafkaUser over TLS."""
    return KafkaConnection(scram_broker.sasl_ssl, security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                           sasl_username=f"ksbb-{service}", sasl_password=scram_broker.users[f"ksbb-{service}"],
                           ssl_ca_file=str(scram_broker.ca_file))


async def test_rendered_acls_confine_each_service(scram_broker: ScramBroker) -> None:
    """The broker enforces the rendered KafkaUser ACLs: an owner writes its topic; the publisher may neither
    write the registry's topics nor read a confidential one."""
    assert scram_broker.acls_applied > 20
    admin = KafkaConnection(scram_broker.plain)
    await ensure_topics(admin, [TOPICS["ksbb.registry.organisations"], TOPICS["ksbb.registry.contacts"]])

    registry = KafkaRecordPublisher(_as(scram_broker, "registry"), client_id="ksbb-acl-test")
    await registry.start()
    try:
        await registry.send("ksbb.registry.organisations", "org_1", b"{}", {})
    finally:
        await registry.stop()

    publisher = KafkaRecordPublisher(_as(scram_broker, "publisher"), client_id="ksbb-acl-test")
    await publisher.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await publisher.send("ksbb.registry.organisations", "org_2", b"{}", {})
    finally:
        await publisher.stop()

    # nothing at all on a confidential topic: not even its metadata (TOPIC_AUTHORIZATION_FAILED = 29)
    for service, visible in (("publisher", False), ("notifier", True)):
        client = AIOKafkaAdminClient(**_as(scram_broker, service).client_options())
        await client.start()
        try:
            (described,) = await client.describe_topics(["ksbb.registry.contacts"])
        finally:
            await client.close()
        assert (described["error_code"] == 0) is visible, (service, described["error_code"])
        if not visible:
            assert described["error_code"] == 29
