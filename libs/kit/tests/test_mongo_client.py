"""The services' database client never waits forever for a reply: a server that goes silent fails the operation."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import pytest
from ksbb_kit.mongo import SOCKET_TIMEOUT_MS, connect
from pymongo.errors import NetworkTimeout


class FreezingProxy:
    """Forwards connections to the database server until `freeze()`; then replies stop coming back."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 27017)
        self.frozen = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """Where clients connect."""
        assert self._server is not None
        return f"mongodb://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/"

    def freeze(self) -> None:
        """From now on nothing the server sends reaches the client (the connection stays open)."""
        self.frozen.set()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, replies: bool) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if replies and self.frozen.is_set():
                        continue
                    dst.write(data)
                    await dst.drain()

        tasks = [asyncio.create_task(pipe(reader, up_writer, replies=False)),
                 asyncio.create_task(pipe(up_reader, writer, replies=True))]
        self._pipes.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        for stream in (writer, up_writer):
            stream.close()

    async def __aenter__(self) -> FreezingProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


@pytest.mark.unit
def test_every_service_client_bounds_a_reply_unless_its_url_says_otherwise() -> None:
    default = connect("mongodb://127.0.0.1:1/")
    chosen = connect("mongodb://127.0.0.1:1/?socketTimeoutMS=2500")
    assert default.options.pool_options.socket_timeout == SOCKET_TIMEOUT_MS / 1000
    assert chosen.options.pool_options.socket_timeout == 2.5


@pytest.mark.integration
async def test_an_operation_on_a_server_gone_silent_fails_instead_of_waiting_forever(kit_env: dict[str, Any]) -> None:
    async with FreezingProxy(kit_env["mongodb_url"]) as proxy:
        client = connect(f"{proxy.url}?socketTimeoutMS=1000&directConnection=true")
        try:
            collection = client[f"{kit_env['topic_prefix'].replace('.', '_')}silent"]["docs"]
            await collection.insert_one({"_id": "answered"})  # the connection works while replies come back
            proxy.freeze()
            with pytest.raises(NetworkTimeout):
                await asyncio.wait_for(collection.find_one({"_id": "answered"}), timeout=30)
        finally:
            await client.close()
