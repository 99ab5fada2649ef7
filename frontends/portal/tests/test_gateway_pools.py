"""The portal's calls to the gateway are spread over several small connection pools, the least busy first, and
every pool's slot is given back whatever the call's outcome (a small HTTP server on loopback stands in)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from ksbb_kit.testing.waiting import eventually
from ksbb_portal.api import Gateway

pytestmark = pytest.mark.integration


class HeldServer:
    """Answers every request only when released; counts requests waiting and connections opened."""

    def __init__(self) -> None:
        self.waiting = 0
        self.connections = 0
        self.release = asyncio.Event()
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                self.waiting += 1
                await self.release.wait()
                self.waiting -= 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[HeldServer]:
    held = HeldServer()
    listening = await asyncio.start_server(held.handle, "127.0.0.1", 0)
    held.port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield held
        held.release.set()


async def test_calls_are_spread_over_the_pools_least_busy_first(server: HeldServer) -> None:
    gateway = Gateway(f"http://127.0.0.1:{server.port}")
    calls = 2 * gateway.POOLS
    try:
        sent = [asyncio.create_task(gateway.send("GET", f"/v1/x/{i}", token=None, client_address=None, lang="id"))
                for i in range(calls)]
        await eventually(lambda: server.waiting == calls, within=20, what="every call at the server")
        assert gateway._in_flight == [2] * gateway.POOLS, "each pool carries two calls"
        server.release.set()
        answers = await asyncio.gather(*sent)
        assert [a.status_code for a in answers] == [200] * calls
        assert gateway._in_flight == [0] * gateway.POOLS
        assert server.connections == calls
    finally:
        await gateway.aclose()


async def test_a_failed_call_gives_its_slot_back() -> None:
    gateway = Gateway("http://127.0.0.1:9")  # nothing listens on the discard port
    try:
        with pytest.raises(httpx.ConnectError):
            await gateway.send("GET", "/v1/x", token=None, client_address=None, lang="id")
        assert gateway._in_flight == [0] * gateway.POOLS
    finally:
        await gateway.aclose()
