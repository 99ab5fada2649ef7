"""Reading topics from offset 0 up to their current end with a group-less Kafka consumer (for rebuilds)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from ksbb_kit.kafka import KafkaConnection, kafka_connection

from ksbb_publisher.app.ports import ReplayedRecord


class KafkaTopicReplay:
    """Replays topics without a consumer group: nothing is committed, the service's group is untouched."""

    def __init__(self, connection: str | KafkaConnection, *, max_records: int = 5000) -> None:
        self._connection = kafka_connection(connection)
        self._max_records = max_records

    async def size(self, topics: Sequence[str]) -> int:
        """How many records the topics hold now: end minus beginning offsets, summed over partitions."""
        consumer = AIOKafkaConsumer(**self._connection.client_options(), enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            if not partitions:
                return 0
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            return sum(ends[tp] - starts[tp] for tp in partitions)
        finally:
            await consumer.stop()

    async def batches(self, topics: Sequence[str]) -> AsyncIterator[list[ReplayedRecord]]:
        """Every record up to the end offsets seen at the start, in batches (offset order per partition)."""
        consumer = AIOKafkaConsumer(
            **self._connection.client_options(), enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            # Metadata for topics we do not subscribe to (aiokafka has no public call that refreshes it).
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            if not partitions:
                return
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            remaining = {tp for tp in partitions if ends[tp] > 0}
            while remaining:
                fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=self._max_records)
                batch: list[ReplayedRecord] = []
                for tp, records in fetched.items():
                    for record in records:
                        if record.offset >= ends[tp]:
                            break
                        batch.append(ReplayedRecord(tp.topic, record.key, record.value))
                yield batch
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        finally:
            await consumer.stop()
