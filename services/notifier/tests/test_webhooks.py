"""Webhook delivery end to end: real HTTP receivers, signatures checked by the reference library,
the retry schedule on an injected clock, Retry-After, 410, rotation, redelivery, recovery, SSRF, leases."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import pytest_asyncio
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.kafka import TopicReader, publish_events
from ksbb_notifier.bootstrap import another_dispatcher
from ksbb_notifier.domain.deliveries import AttemptResult, WebhookRequest
from ksbb_notifier.settings import DEFAULT_RETRY_SCHEDULE
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

pytestmark = pytest.mark.integration

HOSTS = {
    "receiver.test": ["127.0.0.1"],
    "localhost": ["127.0.0.1"],
    "internal.example": ["10.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "evil.example": ["192.168.1.5"],
    "rebind.example": ["93.184.216.34", "10.1.2.3"],
}


async def fake_resolver(host: str, port: int) -> list[str]:
    """Test DNS: fixed answers, NXDOMAIN otherwise."""
    if host not in HOSTS:
        raise OSError(f"{host}: name not known")
    return HOSTS[host]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(infra: Any, dev_issuer: Any, h: Any) -> AsyncIterator[Any]:
    """One notifier for the module, on a manual clock, with deliveries driven by the tests."""
    settings = h.base_settings(
        infra, dev_issuer, h.new_namespace(), insecure_http_hosts=["127.0.0.1", "localhost", "receiver.test"]
    )
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    async with h.start_notifier(settings, clock, resolver=fake_resolver) as running:
        yield running


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def isolated(app: Any) -> AsyncIterator[None]:
    """Start each test at the real time (the reference library rejects timestamps far from now) and
    switch its endpoints off afterwards, so leftovers never reach the next test's receivers."""
    app.clock.set(datetime.now(UTC).replace(microsecond=0))
    yield
    await app.db.endpoints.update_many({}, {"$set": {"enabled": False}})
    app.notifier.endpoints.cache.forget()


@pytest.fixture
def org(h: Any) -> str:
    """A fresh organisation id per test, so tests never see each other's endpoints."""
    return h.new_namespace().rstrip(".").replace("t", "org_", 1)


async def create_endpoint(app: Any, headers: dict[str, str], url: str, **fields: Any) -> dict[str, Any]:
    """Register an endpoint through the API."""
    response = await app.client.post("/v1/webhooks/endpoints", json={"url": url, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def delivery_of(app: Any, endpoint_id: str, message_id: str | None = None) -> dict[str, Any]:
    """The stored delivery doc of an endpoint (the only one, or of one message)."""
    query: dict[str, Any] = {"endpoint_id": endpoint_id}
    if message_id:
        query["message_id"] = message_id
    doc = await app.db.deliveries.find_one(query)
    assert doc is not None
    return dict(doc)


async def send_test(app: Any, headers: dict[str, str], endpoint_id: str) -> dict[str, Any]:
    """Queue a test event through the API."""
    response = await app.client.post(f"/v1/webhooks/endpoints/{endpoint_id}/test", headers=headers)
    assert response.status_code == 202, response.text
    return dict(response.json())


async def test_signed_deliveries_verify_with_reference_library_and_respect_scope(
    app: Any,
    receiver: Any,
    dev_issuer: Any,
    h: Any,
    org: str,
    infra: Any,
) -> None:
    fac_a = h.auth(dev_issuer, "facilitator", org_id=org)
    other = org + "_other"
    fac_b = h.auth(dev_issuer, "facilitator", org_id=other)
    admin = h.auth(dev_issuer, "admin")
    own = await create_endpoint(app, fac_a, receiver.url("/a"))
    theirs = await create_endpoint(app, fac_b, receiver.url("/b"))
    await create_endpoint(app, admin, receiver.url("/admin"), event_types=["ksbb.pledge.*"])
    assert own["secret"].startswith("whsec_") and own["organisation_id"] == org

    pledge, need = await publish_events(
        infra.kafka_bootstrap,
        app.settings.topic_prefix,
        [
            h.pledge_created("plg_sig", org, "rcp_sig"),
            h.need_opened("need_sig", other, "rcp_other"),
        ],
    )

    async def fanned_out() -> bool:
        return await app.db.deliveries.count_documents({"message_id": {"$in": [pledge.id, need.id]}}) == 4

    await h.eventually(fanned_out, what="fan-out of both events")
    await app.notifier.dispatcher.run_due()

    [to_a_pledge] = [r for r in receiver.at("/a") if r.headers["webhook-id"] == pledge.id]
    verified = Webhook(own["secret"]).verify(to_a_pledge.body, to_a_pledge.headers)
    assert verified["type"] == "ksbb.pledge.created.v1"
    assert verified["data"] == pledge.data
    assert set(verified) == {"type", "timestamp", "data"}
    assert "phone" not in to_a_pledge.body and "email" not in to_a_pledge.body
    with pytest.raises(WebhookVerificationError):
        Webhook(own["secret"]).verify(to_a_pledge.body.replace("plg_sig", "plg_xxx"), to_a_pledge.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(theirs["secret"]).verify(to_a_pledge.body, to_a_pledge.headers)
    # need.opened is programme-wide: organisation A sees organisation B's new need too.
    assert {r.headers["webhook-id"] for r in receiver.at("/a")} == {pledge.id, need.id}
    assert [r.headers["webhook-id"] for r in receiver.at("/b")] == [need.id]
    assert [r.headers["webhook-id"] for r in receiver.at("/admin")] == [pledge.id]
    for request in receiver.at("/b"):
        Webhook(theirs["secret"]).verify(request.body, request.headers)

    # A redelivered Kafka event (same id) creates no second delivery.
    await publish_events(
        infra.kafka_bootstrap,
        app.settings.topic_prefix,
        [h.pledge_created("plg_sig", org, "rcp_sig")],
        event_ids=[pledge.id],
    )
    (marker,) = await publish_events(
        infra.kafka_bootstrap, app.settings.topic_prefix, [h.pledge_created("plg_marker", org, "rcp_sig")]
    )

    async def marker_seen() -> bool:
        return await app.db.messages.find_one({"_id": marker.id}) is not None

    await h.eventually(marker_seen, what="later event consumed")
    assert await app.db.deliveries.count_documents({"message_id": pledge.id}) == 2


async def test_filters_by_kota_and_recipient_kind(
    app: Any,
    receiver: Any,
    dev_issuer: Any,
    h: Any,
    org: str,
    infra: Any,
) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    pusat = await create_endpoint(app, fac, receiver.url("/pusat"), kota_codes=["31.71"])
    selatan = await create_endpoint(app, fac, receiver.url("/selatan"), kota_codes=["31.74"])
    pesantren = await create_endpoint(app, fac, receiver.url("/pesantren"), recipient_kinds=["pesantren"])
    envelopes = await publish_events(
        infra.kafka_bootstrap,
        app.settings.topic_prefix,
        [
            h.recipient_registered("rcp_filter", org, kind=h.RecipientKind.PANTI_ASUHAN),
            h.pledge_created("plg_filter", org, "rcp_filter"),
        ],
    )

    async def fanned_out() -> bool:
        # A message is stored before its deliveries: wait for the second message's fan-out to finish.
        return await app.db.deliveries.count_documents({"message_id": {"$in": [e.id for e in envelopes]}}) >= 2

    await h.eventually(fanned_out)
    store = app.db
    assert await store.deliveries.count_documents({"endpoint_id": pusat["id"]}) == 2
    assert await store.deliveries.count_documents({"endpoint_id": selatan["id"]}) == 0
    assert await store.deliveries.count_documents({"endpoint_id": pesantren["id"]}) == 0

    invalid = await app.client.post(
        "/v1/webhooks/endpoints", headers=fac, json={"url": receiver.url("/x"), "kota_codes": ["31.99"]}
    )
    assert invalid.status_code == 422 and invalid.json()["field"] == "kota_codes"


async def test_retry_schedule_follows_the_injected_clock_then_fails_with_an_event(
    app: Any,
    receiver: Any,
    dev_issuer: Any,
    h: Any,
    org: str,
    infra: Any,
) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    receiver.defaults["/down"] = (500, {}, "internal error " + "x" * 5000)
    endpoint = await create_endpoint(app, fac, receiver.url("/down"))
    topic = app.settings.topic("ksbb.notifier.webhooks")
    async with TopicReader(infra.kafka_bootstrap, [topic]) as reader:
        sent = await send_test(app, fac, endpoint["id"])
        schedule = DEFAULT_RETRY_SCHEDULE
        for attempt in range(1, len(schedule) + 1):
            await app.notifier.dispatcher.run_due()
            delivery = await delivery_of(app, endpoint["id"])
            assert delivery["attempts"] == attempt
            if attempt < len(schedule):
                assert delivery["status"] == "pending"
                expected = app.clock.now() + timedelta(seconds=schedule[attempt])
                assert delivery["next_attempt_at"] == expected
                app.clock.advance(schedule[attempt] - 1)
                await app.notifier.dispatcher.run_due()
                assert (await delivery_of(app, endpoint["id"]))["attempts"] == attempt  # not due yet
                app.clock.advance(1)
        assert delivery["status"] == "failed"
        assert len(receiver.at("/down")) == len(schedule)
        assert len({r.headers["webhook-id"] for r in receiver.at("/down")}) == 1
        assert len({r.headers["webhook-timestamp"] for r in receiver.at("/down")}) == len(schedule)
        log = delivery["attempt_log"]
        assert [e["status_code"] for e in log] == [500] * len(schedule)
        assert all(len(e["response_body"]) == 1024 for e in log)

        failed = await reader.wait_for(
            lambda es: any(e.type == "ksbb.webhook.delivery_failed.v1" and e.subject == endpoint["id"] for e in es)
        )
        [event] = [e for e in failed if e.type == "ksbb.webhook.delivery_failed.v1" and e.subject == endpoint["id"]]
        assert event.data["message_id"] == sent["message_id"]
        assert event.data["attempts"] == len(schedule)
        assert event.subject == endpoint["id"]

    page = await app.client.get(
        f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries",
        params={"status": "failed", "event_type": "ksbb.webhook.test.v1"},
        headers=fac,
    )
    assert page.status_code == 200
    [item] = page.json()["items"]
    assert item["attempts"] == len(schedule) and item["attempt_log"][0]["latency_ms"] >= 0
    empty = await app.client.get(
        f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", params={"status": "succeeded"}, headers=fac
    )
    assert empty.json()["items"] == []


async def test_retry_after_is_honoured_for_429_and_503(
    app: Any,
    receiver: Any,
    dev_issuer: Any,
    h: Any,
    org: str,
) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    endpoint = await create_endpoint(app, fac, receiver.url("/slow"))
    later = app.clock.now() + timedelta(minutes=42)
    receiver.script(
        "/slow",
        (429, {"Retry-After": "120"}, "slow down"),
        (503, {"Retry-After": format_datetime(later, usegmt=True)}, "maintenance"),
        (200, {}, "ok"),
    )
    await send_test(app, fac, endpoint["id"])
    await app.notifier.dispatcher.run_due()
    delivery = await delivery_of(app, endpoint["id"])
    assert delivery["next_attempt_at"] == app.clock.now() + timedelta(seconds=120)
    app.clock.advance(120)
    await app.notifier.dispatcher.run_due()
    delivery = await delivery_of(app, endpoint["id"])
    assert delivery["next_attempt_at"] == later
    app.clock.set(later)
    await app.notifier.dispatcher.run_due()
    delivery = await delivery_of(app, endpoint["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3


async def test_410_disables_the_endpoint_and_emits_an_event(
    app: Any,
    receiver: Any,
    dev_issuer: Any,
    h: Any,
    org: str,
    infra: Any,
) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    receiver.defaults["/gone"] = (410, {}, "gone")
    endpoint = await create_endpoint(app, fac, receiver.url("/gone"))
    topic = app.settings.topic("ksbb.notifier.webhooks")
    async with TopicReader(infra.kafka_bootstrap, [topic]) as reader:
        await send_test(app, fac, endpoint["id"])
        await app.notifier.dispatcher.run_due()
        events = await reader.wait_for(
            lambda es: any(e.type == "ksbb.webhook.endpoint_disabled.v1" and e.subject == endpoint["id"] for e in es)
        )
    [disabled] = [e for e in events if e.type == "ksbb.webhook.endpoint_disabled.v1"]
    assert "410" in disabled.data["reason"] and disabled.data["organisation_id"] == org
    current = (await app.client.get(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=fac)).json()
    assert current["enabled"] is False and "410" in current["disabled_reason"]
    assert (await delivery_of(app, endpoint["id"]))["status"] == "failed"
    refused = await app.client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/test", headers=fac)
    assert refused.status_code == 409 and refused.json()["code"] == "endpoint_disabled"


async def test_rotation_sends_both_signatures_during_the_overlap(
    app: Any,
    receiver: Any,
    dev_issuer: Any,
    h: Any,
    org: str,
) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    endpoint = await create_endpoint(app, fac, receiver.url("/rotate"))
    old_secret = endpoint["secret"]
    rotated = await app.client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret", headers=fac)
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    listed = (await app.client.get(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=fac)).json()
    assert "secret" not in listed and listed["previous_secret_valid_until"] is not None

    await send_test(app, fac, endpoint["id"])
    await app.notifier.dispatcher.run_due()
    [during] = receiver.at("/rotate")
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(during.body, during.headers)
    Webhook(new_secret).verify(during.body, during.headers)

    # After the overlap only the new secret signs; the test uses real "now" for the library's tolerance,
    # so the overlap end is moved instead of the clock.
    await app.db.endpoints.update_one(
        {"_id": endpoint["id"]}, {"$set": {"secrets.1.valid_until": app.clock.now() - timedelta(seconds=1)}}
    )
    app.notifier.endpoints.cache.forget(endpoint["id"])  # another instance would see it within 1 s
    await send_test(app, fac, endpoint["id"])
    await app.notifier.dispatcher.run_due()
    after = receiver.at("/rotate")[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(after.body, after.headers)


async def test_redelivery_and_recovery(app: Any, receiver: Any, dev_issuer: Any, h: Any, org: str) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    receiver.defaults["/later"] = (500, {}, "down")
    endpoint = await create_endpoint(app, fac, receiver.url("/later"))
    started = app.clock.now()
    first = await send_test(app, fac, endpoint["id"])
    second = await send_test(app, fac, endpoint["id"])
    # Exhaust the schedule quickly: each due attempt, then jump to the next.
    for _ in DEFAULT_RETRY_SCHEDULE:
        await app.notifier.dispatcher.run_due()
        app.clock.advance(36000)
    base = f"/v1/webhooks/endpoints/{endpoint['id']}"
    failed = (await app.client.get(f"{base}/deliveries", params={"status": "failed"}, headers=fac)).json()
    assert {d["message_id"] for d in failed["items"]} == {first["message_id"], second["message_id"]}

    receiver.defaults["/later"] = (204, {}, "")
    redo = await app.client.post(f"{base}/deliveries/{first['delivery_id']}/redeliver", headers=fac)
    assert redo.status_code == 202 and redo.json()["status"] == "pending"
    await app.notifier.dispatcher.run_due()
    assert (await delivery_of(app, endpoint["id"], first["message_id"]))["status"] == "succeeded"
    assert (await delivery_of(app, endpoint["id"], second["message_id"]))["status"] == "failed"

    recovered = await app.client.post(f"{base}/recover", json={"since": started.isoformat()}, headers=fac)
    assert recovered.status_code == 202 and recovered.json() == {"requeued": 1}
    await app.notifier.dispatcher.run_due()
    assert (await delivery_of(app, endpoint["id"], second["message_id"]))["status"] == "succeeded"
    ids = [r.headers["webhook-id"] for r in receiver.at("/later")]
    assert ids.count(second["message_id"]) == len(DEFAULT_RETRY_SCHEDULE) + 1
    bad = await app.client.post(f"{base}/recover", json={"since": "yesterday"}, headers=fac)
    assert bad.status_code == 422 and bad.json()["field"] == "since"


async def test_ssrf_guard_refuses_private_destinations(
    app: Any,
    receiver: Any,
    dev_issuer: Any,
    h: Any,
    org: str,
) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    for url in (
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "http://example.org/hook",
        "ftp://example.org/x",
    ):
        response = await app.client.post("/v1/webhooks/endpoints", json={"url": url}, headers=fac)
        assert response.status_code == 422, url
        assert response.json()["field"] == "url"

    cases = {
        "loopback": receiver.url("/ssrf", host="localhost"),
        "private-10": "https://internal.example/hook",
        "metadata": "https://metadata.example/latest/meta-data",
        "private-192": "https://evil.example/hook",
        "rebinding": "https://rebind.example/hook",
    }
    endpoints = {name: await create_endpoint(app, fac, url) for name, url in cases.items()}
    for endpoint in endpoints.values():
        await send_test(app, fac, endpoint["id"])
    await app.notifier.dispatcher.run_due()
    for name, endpoint in endpoints.items():
        delivery = await delivery_of(app, endpoint["id"])
        [entry] = delivery["attempt_log"]
        assert entry["status_code"] is None and entry["error"].startswith("refused"), name
        assert delivery["status"] == "pending"  # refused attempts follow the retry schedule
    assert receiver.at("/ssrf") == []
    metadata_error = (await delivery_of(app, endpoints["metadata"]["id"]))["attempt_log"][0]["error"]
    assert "metadata" in metadata_error
    # The allow-listed host name reaches the same loopback address.
    allowed = await create_endpoint(app, fac, receiver.url("/ssrf"))
    await send_test(app, fac, allowed["id"])
    await app.notifier.dispatcher.run_due()
    assert len(receiver.at("/ssrf")) == 1


async def test_redirects_are_not_followed(app: Any, receiver: Any, dev_issuer: Any, h: Any, org: str) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    receiver.defaults["/moved"] = (307, {"Location": receiver.url("/target")}, "")
    endpoint = await create_endpoint(app, fac, receiver.url("/moved"))
    await send_test(app, fac, endpoint["id"])
    await app.notifier.dispatcher.run_due()
    delivery = await delivery_of(app, endpoint["id"])
    assert delivery["attempt_log"][0]["status_code"] == 307 and delivery["status"] == "pending"
    assert receiver.at("/target") == []


async def test_two_dispatchers_never_deliver_one_message_twice(
    app: Any,
    receiver: Any,
    dev_issuer: Any,
    h: Any,
    org: str,
) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    endpoints = [await create_endpoint(app, fac, receiver.url(f"/lease{i}")) for i in range(4)]
    for endpoint in endpoints:
        for _ in range(5):
            await send_test(app, fac, endpoint["id"])
    other = another_dispatcher(app.notifier)  # its own slots and pacing, as another instance has
    import asyncio

    await asyncio.gather(app.notifier.dispatcher.run_due(), other.run_due())
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 20 and len(set(ids)) == 20


async def test_endpoint_failing_for_five_days_is_disabled_and_its_organisation_told(
    app: Any,
    receiver: Any,
    dev_issuer: Any,
    h: Any,
    org: str,
    infra: Any,
) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    receiver.defaults["/dying"] = (500, {}, "down")
    endpoint = await create_endpoint(app, fac, receiver.url("/dying"))
    for day in range(6):
        await send_test(app, fac, endpoint["id"])
        await app.notifier.dispatcher.run_due()
        current = await app.db.endpoints.find_one({"_id": endpoint["id"]})
        assert current["enabled"] is (day < 5), day
        app.clock.advance(timedelta(days=1))
    assert "5 days" in current["disabled_reason"]
    email = await app.db.emails.find_one({"kind": "endpoint_disabled", "to_id": org})
    assert email is not None and email["context"]["endpoint_id"] == endpoint["id"]
    enabled = await app.client.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"enabled": True}, headers=fac)
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    assert enabled.json()["failing_since"] is None


class GatedSender:
    """A stand-in HTTP client: URLs containing "hang" wait for a gate; it records concurrency per URL."""

    def __init__(self) -> None:
        import asyncio

        self.gate = asyncio.Event()
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.peak_total = 0

    async def send(self, request: WebhookRequest) -> AttemptResult:
        url = request.url
        self.in_flight[url] = self.in_flight.get(url, 0) + 1
        self.peak[url] = max(self.peak.get(url, 0), self.in_flight[url])
        self.peak_total = max(self.peak_total, sum(self.in_flight.values()))
        try:
            if "hang" in url:
                await self.gate.wait()
            return AttemptResult(200, 1, "ok")
        finally:
            self.in_flight[url] -= 1

    async def close(self) -> None:
        """Nothing pooled."""


async def test_a_hanging_endpoint_only_holds_its_own_slots(app: Any, dev_issuer: Any, h: Any, org: str) -> None:
    import asyncio

    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    urls = ["https://hang.example/x", "https://a.example/x", "https://b.example/x"]
    endpoints = [await create_endpoint(app, fac, url) for url in urls]
    for endpoint in endpoints:
        for _ in range(5):
            await send_test(app, fac, endpoint["id"])
    sender = GatedSender()
    settings = app.settings.model_copy(update={"per_endpoint_concurrency": 2, "global_concurrency": 4})
    dispatcher = another_dispatcher(app.notifier, sender=sender, settings=settings)
    serving = asyncio.create_task(dispatcher.serve())
    try:

        async def healthy_done() -> bool:
            return (
                await app.db.deliveries.count_documents(
                    {"endpoint_id": {"$in": [endpoints[1]["id"], endpoints[2]["id"]]}, "status": "succeeded"}
                )
                == 10
            )

        await h.eventually(healthy_done, what="healthy endpoints delivered while one hangs")
        hanging = await app.db.deliveries.find({"endpoint_id": endpoints[0]["id"]}).to_list(None)
        assert all(d["status"] == "pending" and d["attempts"] == 0 for d in hanging)
        assert sender.in_flight[urls[0]] == 2  # exactly its own per-endpoint slots
        sender.gate.set()

        async def all_done() -> bool:
            return (
                await app.db.deliveries.count_documents(
                    {"endpoint_id": {"$in": [e["id"] for e in endpoints]}, "status": "succeeded"}
                )
                == 15
            )

        await h.eventually(all_done)
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    assert max(sender.peak.values()) <= 2 and sender.peak_total <= 4


async def test_rate_limit_postpones_without_counting_attempts(
    app: Any, receiver: Any, dev_issuer: Any, h: Any, org: str
) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    endpoint = await create_endpoint(app, fac, receiver.url("/limited"), rate_limit_per_second=1)
    for _ in range(3):
        await send_test(app, fac, endpoint["id"])
    for expected in (1, 2, 3):
        await app.notifier.dispatcher.run_due()
        assert len(receiver.at("/limited")) == expected
        app.clock.advance(1)
    deliveries = await app.db.deliveries.find({"endpoint_id": endpoint["id"]}).to_list(None)
    assert [d["attempts"] for d in deliveries] == [1, 1, 1]


async def test_retention_sweep_keeps_pending_work(app: Any, receiver: Any, dev_issuer: Any, h: Any, org: str) -> None:
    fac = h.auth(dev_issuer, "facilitator", org_id=org)
    receiver.script("/kept", (200, {}, "ok"), (500, {}, "down"))
    endpoint = await create_endpoint(app, fac, receiver.url("/kept"))
    done = await send_test(app, fac, endpoint["id"])
    await app.notifier.dispatcher.run_due()
    waiting = await send_test(app, fac, endpoint["id"])
    await app.notifier.dispatcher.run_due()
    store = app.db
    later = app.clock.now() + timedelta(days=31)
    removed = await app.notifier.deliveries.sweep_finished(later - timedelta(days=30))
    assert removed["deliveries"] >= 1
    assert await store.deliveries.find_one({"_id": done["delivery_id"]}) is None
    assert await store.messages.find_one({"_id": done["message_id"]}) is None
    assert (await store.deliveries.find_one({"_id": waiting["delivery_id"]}))["status"] == "pending"
    assert await store.messages.find_one({"_id": waiting["message_id"]}) is not None
