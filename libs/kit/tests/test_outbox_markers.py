"""Integration: an outbox marker stays while any writer that left it has not been published, and goes after.

The relay runs on the MongoDB-wire server; what it publishes is recorded by a publisher port (Kafka is not
what these tests are about). Writers mark a document before writing its events, as the services do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from ksbb_kit.outbox import MARKERS, OutboxRelay, marker_id, new_document, tombstone_entry, with_outbox
from ksbb_kit.testing.infra import Infra
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.integration

COLLECTION = "aggregates"


class Recorded:
    """A publisher port that keeps what it was given, in order."""

    def __init__(self) -> None:
        self.keys: list[str | bytes | None] = []

    async def send(
        self, topic: str, key: str | bytes | None, value: bytes | None, headers: Mapping[str, str | bytes]
    ) -> None:
        """Record one published record's key."""
        self.keys.append(key)


@pytest.fixture
async def db(infra: Infra, namespace: str) -> AsyncIterator[Any]:
    """A database of this test's own."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    database = client[f"{namespace.replace('.', '_')}outbox"]
    yield database
    await client.drop_database(database.name)
    await client.close()


async def open_writers(db: Any) -> int | None:
    """How many writers the document's marker still counts (None: no marker)."""
    marker = await db[MARKERS].find_one({"_id": marker_id(COLLECTION, "doc-1")})
    return None if marker is None else int(marker["open"])


async def test_a_marker_two_writers_left_outlives_the_first_publish_and_goes_with_the_second(db: Any) -> None:
    published = Recorded()
    relay = OutboxRelay(db, [COLLECTION], published)
    first, second = tombstone_entry("ksbb.test", "first"), tombstone_entry("ksbb.test", "second")

    async with relay.pending(COLLECTION, "doc-1", None):  # the first writer, its events not decided yet
        async with relay.pending(COLLECTION, "doc-1", [second]):  # a second writer marks meanwhile
            await db[COLLECTION].insert_one(new_document({"_id": "doc-1"}, [first]))
            assert await open_writers(db) == 2
            # The second writer's write lands only after the first one's events were published.
            assert await relay.publish_written() == 0  # nothing written by a finished writer yet
            assert await open_writers(db) == 2
            await db[COLLECTION].update_one({"_id": "doc-1"}, with_outbox({"$set": {"n": 2}}, [second]))
        assert await relay.publish_written() == 2  # both writes' events: the document holds both
        assert await open_writers(db) == 1, "the first writer still holds the marker"
    assert await relay.publish_written() == 0
    assert await open_writers(db) is None, "the last writer's pass dropped the marker"
    assert published.keys == ["first", "second"]
    assert (await db[COLLECTION].find_one({"_id": "doc-1"}))["_outbox"] == []


async def test_one_writer_is_published_and_its_marker_dropped_in_the_same_pass(db: Any) -> None:
    published = Recorded()
    relay = OutboxRelay(db, [COLLECTION], published)
    async with relay.pending(COLLECTION, "doc-1", [tombstone_entry("ksbb.test", "only")]):
        await db[COLLECTION].insert_one(new_document({"_id": "doc-1"}, [tombstone_entry("ksbb.test", "only")]))
    assert await relay.publish_written() == 1
    assert await open_writers(db) is None
    assert published.keys == ["only"]
    assert await relay.drain() == 0, "nothing left for a sweep"


async def test_a_relay_whose_database_fails_backs_off_instead_of_spinning(infra: Infra, namespace: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    relay = OutboxRelay(client[f"{namespace.replace('.', '_')}relay"], [COLLECTION], Recorded(), sweep_seconds=0.05)
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.3)  # a few sweeps pass
        await client.close()  # every pass fails from now on, with the sweep long overdue
        await asyncio.sleep(1.5)
        failures = relay._failures.streak
        assert 1 <= failures <= 8, f"{failures} failed passes in 1.5 s: backing off 0.2, 0.4, 0.8 s… means a few"
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
