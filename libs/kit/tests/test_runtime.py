"""The runtime on the real broker and database: readiness, reconnection, trace context, metrics, topics."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, Request
from ksbb_contracts import CONTENT_TYPE, CloudEvent
from ksbb_contracts.events import DonorProfileUpdated, NeedOpened
from ksbb_contracts.topics import DONORS, NEEDS, TOPICS
from ksbb_kit.auth import CurrentPrincipal, Role
from ksbb_kit.cli import read_dead_letters
from ksbb_kit.consumer import EventRouter
from ksbb_kit.kafka import KafkaRecordPublisher
from ksbb_kit.outbox import new_document
from ksbb_kit.runtime import ServiceRuntime
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.kafka import TopicReader
from ksbb_kit.testing.service import free_port, running
from ksbb_kit.testing.waiting import eventually
from ksbb_kit.tracing import new_traceparent, trace_id

pytestmark = pytest.mark.integration


class ProbeSettings(KitSettings):
    """Settings of the probe service used to exercise the runtime."""

    service_name: ClassVar[str] = "pledges"


def probe_app(settings: ProbeSettings, router: EventRouter | None = None) -> Any:
    runtime = ServiceRuntime(settings, title="probe", description="runtime probe", outbox_collections=["donors"])
    if router is not None:
        runtime.subscribe(router)
    api = APIRouter()

    @api.post("/donors/{donor_id}")
    async def write(donor_id: str, principal: CurrentPrincipal, request: Request) -> dict[str, str]:
        entries = runtime.events(DonorProfileUpdated(donor_id=donor_id, kind="person", version=1))
        async with runtime.relay.pending("donors", donor_id, entries):
            await runtime.db["donors"].insert_one(new_document({"_id": donor_id}, entries))
        return {"by": principal.role.value}

    return runtime.create_app([api])


class TcpProxy:
    """A TCP forwarder the test can stop, to make a dependency unreachable and reachable again."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def _wait_ready(client: Any, expected: int) -> dict[str, Any]:
    async def readiness() -> dict[str, Any] | None:
        response = await client.get("/readyz")
        return response.json() if response.status_code == expected else None

    body: dict[str, Any] = await eventually(readiness, within=40, interval=0.3, what=f"/readyz {expected}")
    return body


async def test_readyz_reports_mongodb_outage_and_recovery(kit_env: dict[str, Any]) -> None:
    host, port = kit_env["mongodb_url"].removeprefix("mongodb://").strip("/").split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    settings = ProbeSettings(**{**kit_env, "mongodb_url": f"mongodb://127.0.0.1:{proxy.port}/?serverSelectionTimeoutMS=1500"})
    async with running(probe_app(settings)) as client:
        await proxy.stop()
        down = await _wait_ready(client, 503)
        assert down["checks"] == {"mongodb": False, "kafka": True}
        assert (await client.get("/healthz")).status_code == 200, "liveness is not readiness"
        proxy = TcpProxy(host, int(port), port=proxy.port)  # the database comes back on the same address
        await proxy.start()
        assert (await _wait_ready(client, 200))["checks"] == {"mongodb": True, "kafka": True}
        await proxy.stop()


async def test_readyz_is_503_while_kafka_is_unreachable(kit_env: dict[str, Any]) -> None:
    settings = ProbeSettings(**{**kit_env, "kafka_bootstrap": f"127.0.0.1:{free_port()}"})
    app = probe_app(settings)
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["checks"] == {"mongodb": True, "kafka": False}
            assert (await client.get("/healthz")).status_code == 200


async def test_started_before_kafka_it_publishes_and_dead_letters_once_kafka_is_reachable(
    kit_env: dict[str, Any], dev_issuer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The publisher that failed to connect restarts in place: the relay and the dead-letter path share it."""
    host, port = kit_env["kafka_bootstrap"].rsplit(":", 1)
    kafka_door = TcpProxy(host, int(port))  # not open yet: Kafka is unreachable at this address
    settings = ProbeSettings(**{**kit_env, "kafka_bootstrap": f"127.0.0.1:{kafka_door.port}"})
    router = EventRouter("pledges")

    @router.on(NeedOpened)
    async def never_called(event: NeedOpened, envelope: CloudEvent) -> None:
        raise AssertionError("only a malformed record is sent")

    app = probe_app(settings, router)
    caplog.set_level("WARNING", logger="ksbb_kit.runtime")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
            token = dev_issuer.token(Role.DONOR, subject="d-late")
            accepted = await client.post("/donors/don_late", headers={"authorization": f"Bearer {token}"})
            assert accepted.status_code == 200, "a write is accepted while Kafka is down; its event waits"
            runtime = app.state.runtime
            await eventually(lambda: runtime.kafka_outage.streak >= 2, what="two failed connection attempts")
            outage_lines = [r for r in caplog.records if "Kafka not reachable" in r.getMessage()]
            assert len(outage_lines) == 1, "a repeating failure is logged once per interval, not per attempt"
            assert (await client.get("/readyz")).status_code == 503
            await kafka_door.start()
            await _wait_ready(client, 200)

            async with TopicReader(kit_env["kafka_bootstrap"], [settings.topic(DONORS.name)]) as reader:
                published = await reader.wait_for(lambda es: any(e.subject == "don_late" for e in es))
            assert [e.type for e in published] == [DonorProfileUpdated.event_type]

            poison = KafkaRecordPublisher(kit_env["kafka_bootstrap"], client_id="poison")
            await poison.start()
            try:
                await poison.send(settings.topic(NEEDS.name), "ned_x", b"{not json", {"content-type": CONTENT_TYPE})
            finally:
                await poison.stop()
            dlq = settings.topic(f"{NEEDS.name}.pledges.dlq")
            letters = await eventually(lambda: read_dead_letters(kit_env["kafka_bootstrap"], dlq),
                                       what="the malformed record in the dead-letter topic")
            assert [r["headers"]["ksbb-dlq-reason"] for r in letters] == ["malformed"]
    await kafka_door.stop()


async def test_write_publishes_with_trace_context_topics_and_metrics(kit_env: dict[str, Any], dev_issuer: Any) -> None:
    settings = ProbeSettings(**kit_env)
    async with running(probe_app(settings)) as client:
        parent = new_traceparent()
        token = dev_issuer.token(Role.DONOR, subject="d-1")
        response = await client.post("/donors/don_trace", headers={"traceparent": parent,
                                                                   "authorization": f"Bearer {token}"})
        assert response.json() == {"by": "donor"}
        assert (await client.post("/donors/x")).status_code == 401
        async with TopicReader(settings.kafka_bootstrap, [settings.topic(DONORS.name)]) as reader:
            await reader.wait_for(lambda es: len(es) == 1, timeout=20)
            record = reader.records[0]
        headers = {k: v.decode() for k, v in record.headers}
        assert record.key == b"don_trace"
        assert trace_id(headers["traceparent"]) == trace_id(parent)
        assert headers["content-type"].startswith("application/cloudevents+json")
        metrics = (await client.get("/metrics")).text
        assert 'ksbb_outbox_published_total{topic="ksbb.pledges.donors"}' in metrics
        assert 'route="/donors/{donor_id}"' in metrics
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        wanted = {settings.topic(name) for name in TOPICS} | {settings.topic("ksbb.pledges.ledger.registry.dlq")}
        try:
            # A busy broker shows created topics in its metadata a moment later; they must all appear.
            await eventually(lambda: _listed(admin, wanted), within=30, what="every topic and dead-letter topic")
        finally:
            await admin.close()


async def _listed(admin: Any, wanted: set[str]) -> bool:
    return wanted <= set(await admin.list_topics())


async def test_stopping_is_not_held_by_a_background_job_that_ignores_cancellation(
    kit_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ksbb_kit.runtime as runtime_module

    monkeypatch.setattr(runtime_module, "STOP_STEP_SECONDS", 0.5)
    monkeypatch.setattr(runtime_module, "STOP_NOTICE_SECONDS", 0.2)
    runtime = ServiceRuntime(ProbeSettings(**kit_env), title="probe", description="stubborn job")
    started, released = asyncio.Event(), asyncio.Event()

    @runtime.every(0.1, "stubborn", per_replica=True)
    async def stubborn(_: ServiceRuntime) -> None:
        started.set()
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # a job that swallows the cancellation
                await released.wait()

    await runtime.start()
    try:
        await asyncio.wait_for(started.wait(), timeout=60)
        # Without a bound on each step, stop() would wait for this task for ever (the hang guard is generous).
        await asyncio.wait_for(runtime.stop(), timeout=60)
        # Named while it is still waited for, with where it waits: the job's own line, then the event it awaits.
        notice = [r.getMessage() for r in caplog.records if "background task stubborn has not ended" in r.getMessage()]
        assert len(notice) == 1 and " in stubborn > " in notice[0] and notice[0].endswith(" in wait"), notice
        assert "background task stubborn did not end" in caplog.text
    finally:
        released.set()  # the test's own loop must not keep the stubborn task


async def test_a_task_started_while_stopping_is_stopped_too(kit_env: dict[str, Any]) -> None:
    """Like the Kafka connection finishing as the stop begins and starting the relay and the jobs: stopped too."""
    runtime = ServiceRuntime(ProbeSettings(**kit_env), title="probe", description="late starter")
    await runtime.start()
    late: list[asyncio.Task[None]] = []

    async def starts_another_when_cancelled() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            late.append(asyncio.create_task(asyncio.sleep(3600), name="late"))
            runtime._tasks.append(late[-1])

    runtime._tasks.append(asyncio.create_task(starts_another_when_cancelled()))
    await asyncio.sleep(0)
    await asyncio.wait_for(runtime.stop(), timeout=60)
    assert len(late) == 1 and late[0].cancelled(), "the task started during the stop was cancelled"
