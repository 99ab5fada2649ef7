"""A batch consumer polls again right after an empty poll instead of pausing (records are handled on arrival)."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from ksbb_kit.kafka import poll_batches_without_pause

pytestmark = pytest.mark.unit


class ScriptedConsumer:
    """Answers `getmany` from a script of poll results and remembers how it was asked."""

    def __init__(self, *answers: dict[str, list[Any]]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[int, int]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[str, list[Any]]:
        self.asked.append((timeout_ms, max_records))
        return self.answers.pop(0)


async def test_an_empty_poll_returns_nothing_and_the_next_poll_returns_every_partitions_records() -> None:
    subscriber = KafkaBroker("127.0.0.1:9").subscriber("topic", batch=True, batch_timeout_ms=100, group_id="g")
    poll_batches_without_pause(subscriber, timeout_ms=100, max_records=7)
    consumer = ScriptedConsumer({}, {"p0": ["a", "b"], "p1": ["c"]})

    assert await subscriber.get_msg(consumer) == ()
    assert await subscriber.get_msg(consumer) == ("a", "b", "c")
    assert consumer.asked == [(100, 7), (100, 7)]
