"""Kafka wiring: FastStream broker with an idempotent producer, topic administration, consumer lag."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from ksbb_contracts.topics import Topic

from ksbb_kit.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)


def make_broker(bootstrap: str, *, client_id: str) -> KafkaBroker:
    """A FastStream broker whose producer is idempotent with acks=all; no topic auto-creation."""
    return KafkaBroker(
        bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        allow_auto_create_topics=False,
        logger=logging.getLogger(f"ksbb.kafka.{client_id}"),
        log_level=logging.DEBUG,
    )


class KafkaRecordPublisher:
    """The outbox's and dead-letter queue's producer: idempotent, acks=all, raw records (tombstones too)."""

    def __init__(self, bootstrap: str, *, client_id: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, enable_idempotence=True, acks="all",
            linger_ms=2,
        )

    async def start(self) -> None:
        """Connect to the cluster."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self._producer.stop()

    async def send(self, topic: str, key: str | None, value: bytes | None, headers: dict[str, str]) -> None:
        """Publish one record and wait for the broker's acknowledgement."""
        await self._producer.send_and_wait(
            topic, value=value, key=key.encode() if key is not None else None,
            headers=[(k, v.encode()) for k, v in headers.items()],
        )


async def ensure_topics(
    bootstrap: str, topics: Iterable[Topic], prefix: str = "", partitions: int | None = None
) -> list[str]:
    """Create missing topics with explicit partitions and retention; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if prefix + t.name not in existing]
        created = []
        for topic in wanted:
            try:
                await admin.create_topics([
                    NewTopic(prefix + topic.name, partitions or topic.partitions, 1, topic_configs=topic.config())
                ])
                created.append(prefix + topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


async def consumer_lag(bootstrap: str, group: str, topics: Iterable[str]) -> dict[str, int]:
    """Records not yet committed by a consumer group, per topic; also exported as a metric."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = []
        for topic in topics:
            for partition in consumer.partitions_for_topic(topic) or await _partitions(consumer, topic):
                partitions.append(TopicPartition(topic, partition))
        ends = await consumer.end_offsets(partitions) if partitions else {}
        lag: dict[str, int] = {}
        for tp, end in ends.items():
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - done)
        for topic, value in lag.items():
            CONSUMER_LAG.labels(group=group, topic=topic).set(value)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # metadata for a topic we have not subscribed to
    return consumer.partitions_for_topic(topic) or set()
