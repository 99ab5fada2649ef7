"""Kafka wiring: FastStream broker with an idempotent producer, topic administration, consumer lag.

Every client the kit creates connects through one `KafkaConnection` (bootstrap servers, TLS, SASL/SCRAM);
a plain bootstrap string still works and means an unauthenticated PLAINTEXT connection (local runs, tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from ksbb_contracts.topics import Topic

from ksbb_kit.metrics import CONSUMER_LAG, DEAD_LETTER_RECORDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KafkaConnection:
    """Where and how a Kafka client connects: bootstrap servers, TLS (own CA file) and SASL/SCRAM."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_file: str | None = None

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is encrypted."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether the client authenticates with SASL/SCRAM."""
        return self.security_protocol.startswith("SASL")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "security_protocol": self.security_protocol}
        if self.uses_tls:
            options["ssl_context"] = create_ssl_context(cafile=self.ssl_ca_file)
        if self.uses_sasl:
            options.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password)
        return options

    def broker_security(self) -> BaseSecurity | None:
        """The same settings in FastStream's terms."""
        ssl_context = create_ssl_context(cafile=self.ssl_ca_file) if self.uses_tls else None
        if self.uses_sasl:
            scram = SASLScram256 if self.sasl_mechanism == "SCRAM-SHA-256" else SASLScram512
            return scram(self.sasl_username or "", self.sasl_password or "", ssl_context=ssl_context,
                         use_ssl=self.uses_tls)
        if self.uses_tls:
            return BaseSecurity(ssl_context=ssl_context, use_ssl=True)
        return None


def kafka_connection(target: str | KafkaConnection) -> KafkaConnection:
    """A connection from settings' `kafka_connection`, or a plain bootstrap string (PLAINTEXT)."""
    return target if isinstance(target, KafkaConnection) else KafkaConnection(bootstrap=target)


def make_broker(bootstrap: str | KafkaConnection, *, client_id: str) -> KafkaBroker:
    """A FastStream broker whose producer is idempotent with acks=all; no topic auto-creation."""
    connection = kafka_connection(bootstrap)
    return KafkaBroker(
        connection.bootstrap,
        security=connection.broker_security(),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        allow_auto_create_topics=False,
        logger=logging.getLogger(f"ksbb.kafka.{client_id}"),
        log_level=logging.DEBUG,
    )


class PublisherNotStarted(RuntimeError):
    """A record was sent while the publisher is not connected (before start, after stop or a failed start)."""


class KafkaRecordPublisher:
    """The outbox's and dead-letter queue's producer: idempotent, acks=all, raw records (tombstones too).

    It can be started again after a failed start or a stop: each start opens a fresh aiokafka producer
    (a stopped one cannot be reused), so everyone holding this object keeps a working publisher.
    """

    def __init__(self, bootstrap: str | KafkaConnection, *, client_id: str) -> None:
        self._options = {
            **kafka_connection(bootstrap).client_options(), "client_id": client_id, "enable_idempotence": True,
            "acks": "all", "linger_ms": 2,
        }
        self._producer: AIOKafkaProducer | None = None

    @property
    def started(self) -> bool:
        """Whether the publisher is connected and accepts records."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect to the cluster (nothing to do when already connected); a failed start leaves it stopped."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(**self._options)
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        """Flush and disconnect; `start` may be called again afterwards."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(
        self, topic: str, key: str | bytes | None, value: bytes | None, headers: Mapping[str, str | bytes],
    ) -> None:
        """Publish one record and wait for the broker's acknowledgement (bytes keys and headers go unchanged)."""
        if self._producer is None:
            raise PublisherNotStarted(f"cannot publish to {topic}: the Kafka publisher is not started")
        await self._producer.send_and_wait(
            topic, value=value, key=key.encode() if isinstance(key, str) else key,
            headers=[(k, v.encode() if isinstance(v, str) else v) for k, v in headers.items()],
        )


async def ensure_topics(
    bootstrap: str | KafkaConnection, topics: Iterable[Topic], prefix: str = "", partitions: int | None = None,
    *, replication_factor: int = 1,
) -> list[str]:
    """Create missing topics with explicit partitions, replication and retention; returns the names created."""
    admin = AIOKafkaAdminClient(**kafka_connection(bootstrap).client_options())
    try:
        await admin.start()  # inside the try: a failed or cancelled start still closes the client
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if prefix + t.name not in existing]
        created = []
        for topic in wanted:
            try:
                await admin.create_topics([
                    NewTopic(prefix + topic.name, partitions or topic.partitions, replication_factor,
                             topic_configs=topic.config(replication_factor))
                ])
                created.append(prefix + topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def _admin_and_consumer(bootstrap: str | KafkaConnection) -> AsyncIterator[tuple[Any, AIOKafkaConsumer]]:
    """A started admin client and an unsubscribed consumer, both closed on every path (also a failed start)."""
    options = kafka_connection(bootstrap).client_options()
    async with contextlib.AsyncExitStack() as clients:
        admin = AIOKafkaAdminClient(**options)
        clients.push_async_callback(admin.close)
        await admin.start()
        consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
        clients.push_async_callback(consumer.stop)
        await consumer.start()
        yield admin, consumer


async def consumer_lag(bootstrap: str | KafkaConnection, group: str, topics: Iterable[str]) -> dict[str, int]:
    """Records not yet committed by a whole consumer group, per topic (an operator's one-off question).

    It opens its own clients; a running service reports its lag with `AssignedLag` instead.
    """
    async with _admin_and_consumer(bootstrap) as (admin, consumer):
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [tp for tps in (await topic_partitions(admin, topics)).values() for tp in tps]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        lag: dict[str, int] = {}
        for tp, end in ends.items():
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - done)
        return lag


async def end_offsets(bootstrap: str | KafkaConnection, topic: str) -> dict[TopicPartition, int]:
    """The end offset of each partition of a (physical) topic now."""
    async with _admin_and_consumer(bootstrap) as (admin, consumer):
        partitions = (await topic_partitions(admin, [topic])).get(topic, [])
        return dict(await consumer.end_offsets(partitions)) if partitions else {}


async def committed_offsets(bootstrap: str | KafkaConnection, group: str) -> dict[TopicPartition, int]:
    """The offsets a consumer group committed, per partition."""
    async with _admin_and_consumer(bootstrap) as (admin, _):
        return {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}


class AssignedLag:
    """A replica's consumer lag: only the partitions currently assigned to its own consumers.

    Summed over the replicas of a group this is the group's lag (each partition is assigned to one of them),
    and it asks through the consumers the replica already runs: no Kafka client is opened per scrape.
    """

    def __init__(self, group: str, consumers: Callable[[], Iterable[AIOKafkaConsumer]]) -> None:
        self.group = group
        self._consumers = consumers
        self._reported: set[TopicPartition] = set()

    async def measure(self) -> dict[TopicPartition, int]:
        """Lag per assigned partition (end offset minus committed offset); updates `ksbb_consumer_lag_records`."""
        lag: dict[TopicPartition, int] = {}
        for consumer in self._consumers():
            assigned = sorted(consumer.assignment())
            if not assigned:
                continue
            ends = await consumer.end_offsets(assigned)
            committed = await asyncio.gather(*(consumer.committed(tp) for tp in assigned))
            for tp, done in zip(assigned, committed, strict=True):
                lag[tp] = max(0, ends.get(tp, 0) - (done or 0))
        for gone in self._reported - lag.keys():
            # A partition moved to another replica (a rebalance): that replica reports it now.
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.group, gone.topic, str(gone.partition))
        for tp, value in lag.items():
            CONSUMER_LAG.labels(group=self.group, topic=tp.topic, partition=str(tp.partition)).set(value)
        self._reported = set(lag)
        return lag


class DeadLetterDepth:
    """Records present in the dead-letter topics of a replica's consumer group (end minus start offset).

    The clients (an admin client for the partitions, a group-less consumer for the offsets) open on the
    first measurement and stay open until `close`: no Kafka client is opened per scrape. Every replica of a
    group sees the same topics, so each reports the same value: aggregate with `max by (dlq)`, never `sum`.
    """

    def __init__(self, connection: str | KafkaConnection, dead_letter_topics: Callable[[], Mapping[str, str]]) -> None:
        self._options = kafka_connection(connection).client_options()
        #: physical dead-letter topic -> the logical topic whose records it holds
        self._topics = dead_letter_topics
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def measure(self) -> dict[str, int]:
        """Records per dead-letter topic (a topic not created yet has none); updates `ksbb_dead_letter_records`."""
        topics = dict(self._topics())
        if not topics:
            return {}
        async with self._lock:
            admin, consumer = await self._clients()
            partitions = await topic_partitions(admin, topics)
            wanted = [tp for tps in partitions.values() for tp in tps]
            starts = await consumer.beginning_offsets(wanted) if wanted else {}
            ends = await consumer.end_offsets(wanted) if wanted else {}
        present = {dlq: 0 for dlq in topics}
        for tp in wanted:
            present[tp.topic] += max(0, ends.get(tp, 0) - starts.get(tp, 0))
        for dlq, count in present.items():
            DEAD_LETTER_RECORDS.labels(dlq=dlq, topic=topics[dlq]).set(count)
        return present

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            await self.close()  # a half-opened pair from a failed attempt
            admin = AIOKafkaAdminClient(**self._options)
            consumer = AIOKafkaConsumer(**self._options, enable_auto_commit=False)
            self._admin, self._consumer = admin, consumer
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                await self.close()
                raise
        return self._admin, self._consumer

    async def close(self) -> None:
        """Close the clients (the next measurement opens them again)."""
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()


async def topic_partitions(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> dict[str, list[TopicPartition]]:
    """The partitions of each topic, asked of the cluster (a topic that does not exist has none)."""
    wanted = list(topics)
    if not wanted:
        return {}
    found: dict[str, list[TopicPartition]] = {t: [] for t in wanted}
    for described in await admin.describe_topics(wanted):
        if described["topic"] in found and described["error_code"] == 0:
            found[described["topic"]] = sorted(
                TopicPartition(described["topic"], p["partition"]) for p in described["partitions"]
            )
    return found


def poll_batches_without_pause(subscriber: Any, *, timeout_ms: int, max_records: int) -> None:
    """Make a FastStream batch subscriber poll again at once after a poll that found nothing.

    FastStream's batch subscriber sleeps `batch_timeout_ms` after an empty poll, so a record arriving during
    that sleep waited for it (up to 100 ms on an idle partition, the bulk of a quiet stack's propagation
    time). aiokafka's `getmany` already waits at most `timeout_ms` and returns as soon as a record is there,
    so polling again right away costs nothing while idle and adds no wait when a record comes.
    """

    async def next_batch(consumer: AIOKafkaConsumer) -> tuple[Any, ...]:
        records = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return tuple(chain.from_iterable(records.values()))

    subscriber.get_msg = next_batch


async def tolerant_parser(record: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's record parser, made unable to fail: it decodes every header as UTF-8 and raises otherwise
    (the record would then be skipped unrecorded). It sees readable header copies; the message keeps the raw
    record, whose bytes the dispatcher reads and dead-letters when they are not readable."""
    readable = dataclasses.replace(
        record, headers=[(name, (value or b"").decode("utf-8", errors="replace").encode())
                         for name, value in (record.headers or ())],
    )
    if hasattr(record, "consumer"):
        readable.consumer = record.consumer  # FastStream acknowledges through the consumer it attached
    message = await original(readable)
    message.raw_message = record
    return message


async def raw_body_decoder(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """Leave the body as bytes: FastStream would parse it by its content-type and fail on a poison record."""
    return message.body
