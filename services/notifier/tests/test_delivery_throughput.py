"""What makes webhook delivery fast without weakening it: keep-alive pools per endpoint and checked destination
(real sockets), attempt records written together, and events fanned out a batch at a time."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.kafka import publish_events
from ksbb_kit.testing.waiting import eventually
from ksbb_notifier.adapters.http_sender import HttpWebhookSender, PoolKey
from ksbb_notifier.domain.deliveries import WebhookRequest
from ksbb_notifier.domain.ssrf import AddressPolicy

CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


@dataclass
class KeepAliveReceiver:
    """An HTTP/1.1 server on every loopback address that answers 204 and counts connections and requests."""

    port: int = 0
    connections: int = 0
    closed: int = 0
    requests: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on 0.0.0.0 (so 127.0.0.1 and 127.0.0.2 both reach it)."""
        self.server = await asyncio.start_server(self._serve, host="0.0.0.0", port=0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = CONTENT_LENGTH.search(head)
                await reader.readexactly(int(match.group(1)) if match else 0)
                self.requests.append(head)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.closed += 1
            writer.close()


@pytest_asyncio.fixture
async def http_receiver() -> AsyncIterator[KeepAliveReceiver]:
    """A keep-alive receiver for one test."""
    receiver = KeepAliveReceiver()
    await receiver.start()
    yield receiver
    assert receiver.server is not None
    receiver.server.close()


def request(endpoint_id: str, url: str) -> WebhookRequest:
    return WebhookRequest(endpoint_id=endpoint_id, url=url, headers={"content-type": "application/json"}, body="{}")


@pytest.mark.integration
async def test_each_endpoint_and_checked_destination_has_its_own_kept_alive_pool(
    http_receiver: KeepAliveReceiver,
) -> None:
    answers = {"hook.test": ["127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    sender = HttpWebhookSender(
        AddressPolicy.build(["127.0.0.1", "hook.test"], []),
        insecure_http_hosts=["127.0.0.1", "hook.test"],
        timeout=5,
        max_body_bytes=100,
        resolver=resolver,
        connections_per_endpoint=2,
    )
    by_ip = f"http://127.0.0.1:{http_receiver.port}/hook"
    by_name = f"http://hook.test:{http_receiver.port}/hook"
    try:
        for _ in range(10):
            assert (await sender.send(request("end_a", by_ip))).status_code == 204
        assert http_receiver.connections == 1  # one connection, kept alive and reused
        # Concurrent requests never wait for the pool; afterwards it keeps only the endpoint's 2 idle.
        await asyncio.gather(*(sender.send(request("end_a", by_ip)) for _ in range(6)))
        opened = http_receiver.connections
        await eventually(lambda: http_receiver.closed >= opened - 2, within=10, what="connections beyond 2 closed")
        for _ in range(4):
            assert (await sender.send(request("end_a", by_ip))).status_code == 204
        assert http_receiver.connections == opened  # the kept ones are reused
        assert (await sender.send(request("end_b", by_ip))).status_code == 204
        connections = http_receiver.connections
        assert (await sender.send(request("end_b", by_name))).status_code == 204
        assert http_receiver.connections == connections + 1  # same address, another host name: another pool
        assert b"host: hook.test:" in http_receiver.requests[-1].lower()
        answers["hook.test"] = ["127.0.0.2"]  # the name now resolves elsewhere: checked again, a new pool
        assert (await sender.send(request("end_b", by_name))).status_code == 204
        assert http_receiver.connections == connections + 2
        assert sender.pools() == [
            PoolKey("end_a", "http", "127.0.0.1", http_receiver.port, "127.0.0.1"),
            PoolKey("end_b", "http", "127.0.0.1", http_receiver.port, "127.0.0.1"),
            PoolKey("end_b", "http", "hook.test", http_receiver.port, "127.0.0.1"),
            PoolKey("end_b", "http", "hook.test", http_receiver.port, "127.0.0.2"),
        ]
    finally:
        await sender.close()


@pytest.mark.integration
async def test_the_address_check_still_runs_for_every_delivery_on_a_kept_alive_pool(
    http_receiver: KeepAliveReceiver,
) -> None:
    answers = {"hook.test": ["127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    # Only 127.0.0.1 is allowed: the name passes while it points there, and is refused once it does not.
    sender = HttpWebhookSender(
        AddressPolicy.build([], ["127.0.0.1/32"]),
        insecure_http_hosts=["hook.test"],
        timeout=5,
        max_body_bytes=100,
        resolver=resolver,
    )
    url = f"http://hook.test:{http_receiver.port}/hook"
    try:
        assert (await sender.send(request("end_a", url))).status_code == 204
        answers["hook.test"] = ["127.0.0.2"]
        refused = await sender.send(request("end_a", url))
        assert refused.status_code is None and refused.error is not None and refused.error.startswith("refused")
        answers["hook.test"] = ["127.0.0.1", "10.0.0.1"]  # a mixed answer (rebinding) is refused as a whole
        assert (await sender.send(request("end_a", url))).status_code is None
        assert len(http_receiver.requests) == 1
    finally:
        await sender.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def notifier(infra: Any, dev_issuer: Any, h: Any) -> AsyncIterator[Any]:
    """One notifier for the module, deliveries driven by the test."""
    settings = h.base_settings(infra, dev_issuer, h.new_namespace())
    async with h.start_notifier(settings, ManualClock(datetime.now(UTC).replace(microsecond=0))) as running:
        yield running


@pytest.mark.integration
async def test_a_batch_of_events_fans_out_like_one_at_a_time_and_attempts_are_recorded_together(
    h: Any, receiver: Any, notifier: Any, dev_issuer: Any, infra: Any
) -> None:
    """Need events consumed together: one delivery per event and endpoint, all delivered and recorded."""
    admin = h.auth(dev_issuer, "admin")
    paths = [f"/batch/{n}" for n in range(3)]
    for path in paths:
        created = await notifier.client.post("/v1/webhooks/endpoints", headers=admin, json={"url": receiver.url(path)})
        assert created.status_code == 201, created.text
    needs = [h.need_opened(f"ned_batch_{n}", "org_batch", f"rcp_batch_{n}") for n in range(8)]
    envelopes = await publish_events(infra.kafka_bootstrap, notifier.settings.topic_prefix, needs)
    deliveries = notifier.db["deliveries"]
    ids = [e.id for e in envelopes]

    async def fanned_out() -> bool:
        return await deliveries.count_documents({"message_id": {"$in": ids}}) == len(ids) * len(paths)

    await h.eventually(fanned_out, within=60, what="a delivery per event and endpoint")
    assert await notifier.db["messages"].count_documents({"_id": {"$in": ids}}) == len(ids)
    await notifier.notifier.dispatcher.run_due()
    assert all(len(receiver.at(path)) == len(ids) for path in paths)
    received = {r.json()["data"]["need"]["need_id"] for path in paths for r in receiver.at(path)}
    assert received == {f"ned_batch_{n}" for n in range(8)}
    done = await deliveries.count_documents({"message_id": {"$in": ids}, "status": "succeeded", "attempts": 1})
    assert done == len(ids) * len(paths)
    leftover = await notifier.db["delivery_due"].count_documents(
        {"_id": {"$in": [d["_id"] async for d in deliveries.find({"message_id": {"$in": ids}}, {"_id": 1})]}}
    )
    assert leftover == 0  # finished deliveries leave the due index


@pytest.mark.unit
def test_pool_keys_name_what_a_connection_may_be_reused_for() -> None:
    key = PoolKey("end_a", "https", "ngo.example", 443, "93.184.216.34")
    assert key._asdict() == {
        "endpoint_id": "end_a",
        "scheme": "https",
        "host": "ngo.example",
        "port": 443,
        "address": "93.184.216.34",
    }
