"""A tiny service built on the kit, run as a separate process so tests can SIGKILL it at chosen points.

Modes:
  produce N       write N aggregates, each with one pending DonorProfileUpdated event, then wait (no relay)
  produce-half N  leave outbox markers for N aggregates but write only the first half of them, then wait:
                  a crash between the markers and the write
  relay           run the outbox relay; with KILL_AFTER_SENDS=k, SIGKILL itself right after the k-th publish
  consume         consume donor events, counting each event id's effect; with KILL_AFTER_EFFECT=<donor_id>,
                  SIGKILL itself after applying that event's effect (before the offset commit)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import ClassVar

from ksbb_contracts import CloudEvent
from ksbb_contracts.events import DonorProfileUpdated
from ksbb_kit.consumer import EventRouter, apply_once
from ksbb_kit.outbox import OutboxRelay, RecordPublisher, new_document
from ksbb_kit.runtime import ServiceRuntime
from ksbb_kit.settings import KitSettings


class ProcSettings(KitSettings):
    """Settings of the test process (service name `publisher`, a consumer of the donors topic)."""

    service_name: ClassVar[str] = "publisher"


class KillingPublisher:
    """Wraps the real publisher and dies right after the k-th successful publish."""

    def __init__(self, inner: RecordPublisher, kill_after: int) -> None:
        self._inner = inner
        self._left = kill_after

    async def send(self, topic: str, key: str | None, value: bytes | None, headers: dict[str, str]) -> None:
        await self._inner.send(topic, key, value, headers)
        self._left -= 1
        if self._left == 0:
            os.kill(os.getpid(), signal.SIGKILL)


async def produce(runtime: ServiceRuntime, count: int, *, written: int | None = None) -> None:
    """Mark `count` aggregates as the write path does, write the first `written` (all by default), then wait."""
    docs = []
    for i in range(count):
        donor_id = f"don_{i:04d}"
        event = DonorProfileUpdated(donor_id=donor_id, kind="person", version=1)
        docs.append(new_document({"_id": donor_id, "version": 1}, runtime.events(event)))
    # The write path: markers first, then the write. No relay runs here; the test kills us afterwards.
    await runtime.relay.mark("aggregates", [d["_id"] for d in docs])
    chosen = docs[: count if written is None else written]
    if chosen:
        await runtime.db["aggregates"].insert_many(chosen)
    print("written", flush=True)
    await asyncio.Event().wait()


async def relay(runtime: ServiceRuntime) -> None:
    await runtime.publisher.start()
    kill_after = int(os.environ.get("KILL_AFTER_SENDS", "0"))
    outbox = runtime.relay
    if kill_after:
        # The same relay as the runtime's, publishing through a producer that dies after k records.
        settings = runtime.settings
        outbox = OutboxRelay(runtime.db, ["aggregates"], KillingPublisher(runtime.publisher, kill_after),
                             topic_prefix=settings.topic_prefix, lease_seconds=settings.outbox_lease_seconds,
                             marker_grace_seconds=settings.outbox_marker_grace_seconds)
    sent = await outbox.drain()
    await runtime.publisher.stop()
    print(f"relayed {sent}", flush=True)


def counting_router(runtime: ServiceRuntime) -> EventRouter:
    router = EventRouter("publisher")
    kill_on = os.environ.get("KILL_AFTER_EFFECT")
    fail_on = os.environ.get("ALWAYS_FAIL", "")

    @router.on(DonorProfileUpdated)
    async def count(event: DonorProfileUpdated, envelope: CloudEvent) -> None:
        db = runtime.db
        await db["invocations"].update_one({"_id": envelope.id}, {"$inc": {"n": 1}}, upsert=True)
        if event.donor_id == fail_on:
            raise RuntimeError("this handler always fails for " + fail_on)
        await apply_once(db["effects"], {"_id": event.donor_id}, {"$inc": {"applied": 1}}, envelope.id, upsert=True)
        if kill_on and event.donor_id == kill_on:
            os.kill(os.getpid(), signal.SIGKILL)

    return router


async def consume(settings: ProcSettings) -> None:
    runtime = ServiceRuntime(settings, title="kit-test", description="kit test consumer")
    runtime.subscribe(counting_router(runtime))
    await runtime.start()
    await runtime.kafka_connected.wait()
    print("consuming", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runtime.stop()


async def main(argv: list[str]) -> None:
    settings = ProcSettings(handler_max_attempts=3, handler_backoff_seconds=0.05)
    if argv[0] == "consume":
        await consume(settings)
        return
    runtime = ServiceRuntime(settings, title="kit-test", description="kit test producer",
                             outbox_collections=["aggregates"])
    if argv[0] == "produce":
        await produce(runtime, int(argv[1]))
    elif argv[0] == "produce-half":
        await produce(runtime, int(argv[1]), written=int(argv[1]) // 2)
    elif argv[0] == "relay":
        await relay(runtime)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
