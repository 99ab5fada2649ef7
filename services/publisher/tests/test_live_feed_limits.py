"""The live feed under hostile and greedy clients, over real HTTP: stream positions are validated before the first
byte (422, never 500 or a stream dying mid-way), a resume replays a bounded backlog and otherwise says `reset`,
and open streams are capped per client address (429) and in total (503), with Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.kafka import publish_events
from ksbb_kit.testing.service import served
from ksbb_kit.testing.waiting import eventually
from ksbb_publisher.bootstrap import create_app
from ksbb_publisher.settings import PublisherSettings

from .support import NOW, minutes, organisation, pledge, recipient

pytestmark = pytest.mark.integration

GAMBIR = "31.71.01.1001"
MAX_REPLAY, PER_CLIENT, TOTAL = 3, 2, 3
ENTRIES = 6


@dataclass
class Feed:
    """A served publisher whose feed holds ENTRIES entries, with small stream limits."""

    base: str
    settings: PublisherSettings
    latest: int


@pytest.fixture(scope="module")
async def feed(infra: Infra, dev_issuer: DevIssuer) -> AsyncIterator[Feed]:
    """Serve a publisher on a real port and project a few pledges into its feed."""
    settings = PublisherSettings(
        env="test",
        kafka_bootstrap=infra.kafka_bootstrap,
        mongodb_url=infra.mongodb_url,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        jwks_url=str(dev_issuer.jwks_path),
        jwt_issuer=dev_issuer.issuer,
        jwt_audience=dev_issuer.audience,
        handler_backoff_seconds=0.05,
        sse_heartbeat_seconds=0.3,
        feed_poll_seconds=0.3,
        snapshot_interval_seconds=3600,
        sse_max_replay=MAX_REPLAY,
        sse_max_streams_per_client=PER_CLIENT,
        sse_max_streams=TOTAL,
        sse_retry_after_seconds=7,
    )
    app = create_app(settings, clock=ManualClock(NOW + timedelta(days=1)))
    async with served(app) as base:
        events = [organisation("org_1", "Yayasan Uji"), recipient("rcp_1", "org_1", GAMBIR, "RW 03 Gambir")]
        events += [
            pledge(f"plg_{n}", "need_1", "rcp_1", "org_1", "donor_1", GAMBIR, at=NOW + minutes(n))
            for n in range(ENTRIES)
        ]
        await publish_events(settings.kafka_bootstrap, settings.topic_prefix, events)
        async with httpx.AsyncClient(base_url=base) as client:

            async def projected() -> bool:
                return len((await client.get("/v1/public/feed")).json()["items"]) == ENTRIES

            await eventually(projected, within=60, what="feed projected")
            latest = max(e["seq"] for e in (await client.get("/v1/public/feed")).json()["items"])
        yield Feed(base, settings, latest)


def client_at(feed: Feed, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An HTTP client connecting from a given loopback address (a distinct client for the service)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=feed.base, transport=transport, timeout=httpx.Timeout(10, read=30))


async def events_until_heartbeat(response: httpx.Response) -> list[tuple[str, str | None, Any]]:
    """(event, id, data) of the frames a stream sends before it first goes quiet."""
    frames: list[tuple[str, str | None, Any]] = []
    event, event_id = "message", None
    async for line in response.aiter_lines():
        if line.startswith(": heartbeat"):
            break
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            frames.append((event, event_id, json.loads(line[6:])))
            event, event_id = "message", None
    return frames


@pytest.mark.parametrize(
    ("headers", "params", "field"),
    [
        ({}, {"after": "²"}, "after"),
        ({}, {"after": "٣"}, "after"),
        ({}, {"after": "9" * 19}, "after"),
        ({"Last-Event-ID": "1" * 5000}, {}, "Last-Event-ID"),
        ({}, {"after": "7" * 4000}, "after"),
        ({"Last-Event-ID": "-1"}, {}, "Last-Event-ID"),
        ({"Last-Event-ID": "abc"}, {}, "Last-Event-ID"),
    ],
)
async def test_a_position_that_is_not_ours_is_refused_before_the_stream_starts(
    feed: Feed, headers: dict[str, str], params: dict[str, str], field: str
) -> None:
    async with client_at(feed) as client:
        response = await client.get("/v1/public/feed/stream", headers=headers, params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field and body["code"] in ("invalid_stream_position", "validation_error")
    assert body["message"]


async def test_a_resume_within_the_limit_replays_what_was_missed(feed: Feed) -> None:
    async with (
        client_at(feed) as client,
        client.stream(
            "GET", "/v1/public/feed/stream", headers={"Last-Event-ID": str(feed.latest - MAX_REPLAY)}
        ) as response,
    ):
        frames = await events_until_heartbeat(response)
    assert [(event, int(event_id or 0)) for event, event_id, _ in frames] == [
        ("feed", seq) for seq in range(feed.latest - MAX_REPLAY + 1, feed.latest + 1)
    ]


@pytest.mark.parametrize("position", ["0", "1", str(10**17), "999999999999999999"])
async def test_a_resume_too_far_behind_or_ahead_gets_a_reset_and_then_live_entries(feed: Feed, position: str) -> None:
    async with (
        client_at(feed) as client,
        client.stream("GET", "/v1/public/feed/stream", params={"after": position}) as response,
    ):
        assert response.status_code == 200
        frames = await events_until_heartbeat(response)
    assert len(frames) == 1, frames  # nothing replayed
    event, event_id, data = frames[0]
    assert (event, event_id, data["latest_seq"], data["reason"]) == (
        "reset",
        str(feed.latest),
        feed.latest,
        "too_far_behind",
    )
    assert data["reload"] == "/v1/public/feed" and data["message"]["id"] and data["message"]["en"]


@contextlib.asynccontextmanager
async def open_stream(client: httpx.AsyncClient) -> AsyncIterator[httpx.Response]:
    """A live stream held open (its first frame read, so the service counts it)."""
    async with client.stream("GET", "/v1/public/feed/stream") as response:
        # Keep the line iterator referenced: a collected one closes the response (and the stream).
        lines = response.aiter_lines()
        if response.status_code == 200:
            await anext(lines)
        yield response
        del lines


async def test_open_streams_are_capped_per_client_and_in_total_with_a_clear_error(feed: Feed) -> None:
    first, second, third = (client_at(feed, f"127.0.0.{n}") for n in (2, 3, 4))
    async with first, second, third, contextlib.AsyncExitStack() as held:
        for client in (first, first, second):
            response = await held.enter_async_context(open_stream(client))
            assert response.status_code == 200
        over_client = await first.get("/v1/public/feed/stream")
        assert over_client.status_code == 429, over_client.text
        assert over_client.headers["Retry-After"] == "7"
        assert over_client.json()["code"] == "too_many_streams" and over_client.json()["message"]
        over_total = await third.get("/v1/public/feed/stream")
        assert over_total.status_code == 503, over_total.text
        assert over_total.headers["Retry-After"] == "7"
        assert over_total.json()["code"] == "stream_capacity_reached"
    # Streams that end give their place back.
    async with client_at(feed, "127.0.0.4") as fourth:

        async def admitted() -> bool:
            async with open_stream(fourth) as response:
                return response.status_code == 200

        await eventually(admitted, within=20, what="a closed stream's place is free again")


async def test_many_greedy_clients_get_a_clear_refusal_and_the_service_keeps_serving(feed: Feed) -> None:
    clients = 10
    answered: list[int] = []
    everyone_answered = asyncio.Event()

    async def greedy(n: int) -> None:
        # Each one replays from the very beginning and holds its stream until every client has its answer.
        async with (
            client_at(feed, f"127.0.1.{n}") as client,
            client.stream("GET", "/v1/public/feed/stream", headers={"Last-Event-ID": "0"}) as response,
        ):
            lines = response.aiter_lines()
            if response.status_code == 200:
                await anext(lines)
            answered.append(response.status_code)
            if len(answered) == clients:
                everyone_answered.set()
            await everyone_answered.wait()
            del lines

    await asyncio.gather(*(greedy(n) for n in range(1, clients + 1)))
    assert set(answered) <= {200, 503} and answered.count(200) <= TOTAL and answered.count(503) >= clients - TOTAL
    async with client_at(feed) as client:
        assert (await client.get("/v1/public/stats")).status_code == 200
