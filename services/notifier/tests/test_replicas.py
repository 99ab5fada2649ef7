"""Two notifier replicas side by side: per-endpoint concurrency holds across them (one sender at a time)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ksbb_kit.clock import SystemClock

pytestmark = pytest.mark.integration


class CountingReceiver:
    """An HTTP receiver that holds each request a moment and counts how many were in progress at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_progress = 0
        self.most_at_once = 0
        self.received = 0
        self.release = threading.Event()


@pytest.fixture
def counting() -> Iterator[tuple[CountingReceiver, int]]:
    state = CountingReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            with state.lock:
                state.in_progress += 1
                state.most_at_once = max(state.most_at_once, state.in_progress)
            state.release.wait(0.3)  # long enough for a second sender, were there one, to overlap
            with state.lock:
                state.in_progress -= 1
                state.received += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, server.server_address[1]
    finally:
        state.release.set()
        server.shutdown()


async def test_per_endpoint_concurrency_holds_across_two_replicas(
    infra: Any, dev_issuer: Any, h: Any, counting: tuple[CountingReceiver, int],
) -> None:
    receiver, port = counting
    settings = h.base_settings(infra, dev_issuer, h.new_namespace(), dispatcher_autostart=True,
                               per_endpoint_concurrency=1, dispatch_sweep_seconds=0.2)
    async with h.start_notifier(settings, SystemClock()) as first, h.start_notifier(settings, SystemClock()) as second:
        admin = h.auth(dev_issuer, "admin")
        created = await first.client.post(
            "/v1/webhooks/endpoints", json={"url": f"http://127.0.0.1:{port}/hook"}, headers=admin)
        assert created.status_code == 201, created.text
        endpoint_id = created.json()["id"]
        for client in (first.client, second.client) * 3:
            queued = await client.post(f"/v1/webhooks/endpoints/{endpoint_id}/test", headers=admin)
            assert queued.status_code == 202, queued.text
        await h.eventually(lambda: receiver.received == 6, within=60, what="six deliveries received")
        assert receiver.most_at_once == 1
