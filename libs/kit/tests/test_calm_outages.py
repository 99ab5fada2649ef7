"""Calm outages: a broker that cannot be reached costs one log line per interval, not one per attempt, and every
Kafka client a probe opens is closed again on every path (failure, time-out)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from ksbb_contracts.events import NeedOpened
from ksbb_kit.auth import Role
from ksbb_kit.calm import CLIENT_LOGGER_PREFIXES, DEFAULT_INTERVAL_SECONDS, RepeatedLinesFilter, RepeatingFailure
from ksbb_kit.consumer import EventRouter
from ksbb_kit.kafka import consumer_lag
from ksbb_kit.testing.service import free_port
from ksbb_kit.testing.waiting import eventually

from .test_runtime import ProbeSettings, probe_app


class Ticking:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.unit
def test_a_repeating_failure_is_logged_once_per_interval_with_the_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Ticking()
    failure = RepeatingFailure(logging.getLogger("calm-test"), "broker unreachable", interval=30, clock=clock)
    caplog.set_level(logging.INFO, logger="calm-test")
    for second in range(100):  # one failed attempt per second for 100 seconds
        clock.now = float(second)
        failure.failed(ConnectionError("refused"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines  # at 0, 30, 60 and 90 seconds
    assert "broker unreachable (ConnectionError: refused)" == lines[0]
    assert "61 attempts failed in a row, 30 since the last line" in lines[2]
    failure.recovered()
    assert caplog.records[-1].getMessage() == "broker unreachable: recovered after 100 failed attempts"
    assert failure.streak == 0


@pytest.mark.unit
def test_repeated_library_lines_pass_once_per_interval_and_say_how_many_were_suppressed() -> None:
    clock = Ticking()
    quiet = RepeatedLinesFilter(interval=30, clock=clock)

    def line(msg: str, *args: Any, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", level, __file__, 1, msg, args, None)

    passed = []
    for attempt in range(50):
        clock.now = attempt * 0.1  # a client retrying every 100 ms
        record = line("Unable connect to %r: %s", "127.0.0.1:9", f"attempt {attempt}")
        if quiet.filter(record):
            passed.append(record.getMessage())
    assert passed == ["Unable connect to '127.0.0.1:9': attempt 0"]
    clock.now = 31.0
    record = line("Unable connect to %r: %s", "127.0.0.1:9", "again")
    assert quiet.filter(record)
    assert record.getMessage() == "Unable connect to '127.0.0.1:9': again (49 similar lines suppressed in the last 30s)"
    assert quiet.filter(line("another message")), "other messages are not held back"
    assert all(quiet.filter(line("debug detail", level=logging.DEBUG)) for _ in range(3)), "below WARNING passes"


class Outage:
    """All warning-and-above log lines, from every logger, while a test runs."""

    def __init__(self) -> None:
        self.lines: list[logging.LogRecord] = []

    @contextlib.contextmanager
    def recording(self) -> Any:
        class Collect(logging.Handler):
            def emit(inner, record: logging.LogRecord) -> None:
                self.lines.append(record)

        handler = Collect(logging.WARNING)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield self
        finally:
            root.removeHandler(handler)

    def about(self, *words: str) -> list[str]:
        return [r.getMessage() for r in self.lines if any(w in r.getMessage() for w in words)]

    def per_kind(self, *, loggers: tuple[str, ...]) -> Counter[tuple[str, str]]:
        """How many lines each (logger, message template) of these loggers left."""
        return Counter((r.name, str(r.msg)) for r in self.lines if r.name.startswith(loggers))


@pytest.mark.integration
async def test_a_broker_outage_logs_a_bounded_number_of_lines_while_writes_and_scrapes_go_on(
    kit_env: dict[str, Any], dev_issuer: Any
) -> None:
    settings = ProbeSettings(**{**kit_env, "kafka_bootstrap": f"127.0.0.1:{free_port()}"})  # nobody listens
    router = EventRouter("pledges")

    @router.on(NeedOpened)
    async def ignore(event: NeedOpened, envelope: Any) -> None:
        return None

    app = probe_app(settings, router)
    runtime = app.state.runtime
    outage = Outage()
    began = time.monotonic()
    with outage.recording():
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://probe"
        ) as client:
            token = dev_issuer.token(Role.DONOR, subject="d-outage")
            writes = 0

            async def busy_and_still_failing() -> bool:
                nonlocal writes
                accepted = await client.post(f"/donors/don_{writes}", headers={"authorization": f"Bearer {token}"})
                assert accepted.status_code == 200, "writes are accepted during the outage; events wait"
                writes += 1
                assert (await client.get("/metrics")).status_code == 200
                assert (await client.get("/readyz")).status_code == 503
                return runtime.kafka_outage.streak >= 4 and writes >= 20

            await eventually(busy_and_still_failing, within=90, interval=0.2,
                             what="20 writes and 4 failed connection attempts")
    # A failure that goes on is logged again once per interval: on a slow machine the outage may span
    # more than one interval, and each interval it spans allows one more line of each kind.
    intervals = 1 + int((time.monotonic() - began) // DEFAULT_INTERVAL_SECONDS)
    attempts = runtime.kafka_outage.streak
    reconnects = outage.about("Kafka not reachable")
    client_lines = outage.per_kind(loggers=CLIENT_LOGGER_PREFIXES)
    assert attempts >= 4 and writes >= 20
    assert 1 <= len(reconnects) <= intervals, \
        f"{attempts} failed attempts over {intervals} interval(s) logged as {reconnects}"
    assert all(count <= intervals for count in client_lines.values()), \
        f"the Kafka client logged every attempt over {intervals} interval(s): {client_lines}"
    assert len(outage.lines) <= 5 * intervals, [r.getMessage()[:120] for r in outage.lines]


class OneConnection:
    """Forwards the first connection to the broker, then stops listening: the broker fails between two clients."""

    def __init__(self, broker: str) -> None:
        host, port = broker.rsplit(":", 1)
        self._broker = (host, int(port))
        self.port = free_port()
        self.forwarded = 0
        self._server: asyncio.Server | None = None

    async def _first(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._server is not None
        self._server.close()  # nobody else gets in
        self.forwarded += 1
        up_reader, up_writer = await asyncio.open_connection(*self._broker)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def __aenter__(self) -> OneConnection:
        self._server = await asyncio.start_server(self._first, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


class BlackHole:
    """Accepts connections and never answers (a hung broker); counts the connections clients leave open."""

    def __init__(self) -> None:
        self.port = free_port()
        self.open = 0
        self._server: asyncio.Server | None = None

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            while await reader.read(65536):
                pass
        finally:
            self.open -= 1
            writer.close()

    async def __aenter__(self) -> BlackHole:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


def metadata_sync_tasks() -> int:
    """Background metadata tasks of started, never closed aiokafka clients."""
    return len([t for t in asyncio.all_tasks() if "_md_synchronizer" in repr(t.get_coro())])


@pytest.mark.integration
async def test_the_lag_probe_closes_its_clients_when_it_fails_or_times_out(kit_env: dict[str, Any]) -> None:
    before = metadata_sync_tasks()
    async with BlackHole() as hung:
        for _ in range(5):  # a /metrics scrape gives the probe 3 s; a hung broker makes it time out
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(consumer_lag(f"127.0.0.1:{hung.port}", "g", ["t"]), timeout=0.5)
        await eventually(lambda: hung.open == 0, within=10, what="every probe connection closed by the client")
    for _ in range(5):
        # The admin client bootstraps through the one connection (and starts its background metadata task);
        # the consumer then finds the broker gone: the probe fails, and must still close the admin client.
        async with OneConnection(kit_env["kafka_bootstrap"]) as door:
            with pytest.raises(Exception, match=r"Unable to bootstrap|Connect call failed|KafkaConnectionError"):
                await consumer_lag(f"127.0.0.1:{door.port}", "g", ["t"])
            assert door.forwarded == 1
    await eventually(lambda: metadata_sync_tasks() == before, within=10, what="no aiokafka client left running")
