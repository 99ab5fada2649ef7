"""Who the client is, and which request and trace a line or an event belongs to, through the real nginx."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from ksbb_gateway.config import GatewayConfig
from ksbb_gateway.testing import RELAXED, Platform
from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.testing.kafka import TopicReader
from ksbb_kit.testing.waiting import eventually
from ksbb_kit.tracing import new_traceparent, trace_id

pytestmark = pytest.mark.integration

SPOOFED = "203.0.113.9"


async def _client_seen(stack: Platform, request_id: str) -> str:
    lines = await eventually(lambda: stack.log.access(request_id), within=10, what=f"access line of {request_id}")
    assert len(lines) == 1
    return str(lines[0]["http"]["client"])


# ---- client address -------------------------------------------------------------------------------


async def test_forwarding_headers_from_a_client_are_ignored_by_the_gateway_and_the_services(stack: Platform) -> None:
    spoof = {"x-forwarded-for": SPOOFED, "forwarded": f"for={SPOOFED}", "x-real-ip": SPOOFED}
    through, direct = uuid.uuid4().hex, uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=stack.url) as client:
        await client.get("/v1/public/stats", headers={**spoof, "x-request-id": through})
    # Straight to the service port from an address that is not the gateway's.
    async with httpx.AsyncClient(base_url=stack.services["publisher"].url) as client:
        await client.get("/v1/public/stats", headers={**spoof, "x-request-id": direct})
    assert await _client_seen(stack, through) == "127.0.0.1"
    assert await _client_seen(stack, direct) == "127.0.0.1"


async def test_the_service_believes_x_forwarded_for_only_from_the_gateway_address(
    stack: Platform, gateway_config: GatewayConfig
) -> None:
    proxy = gateway_config.target("local").proxy_bind
    assert proxy, "the local gateway connects from its own loopback address"
    request_id = uuid.uuid4().hex
    transport = httpx.AsyncHTTPTransport(local_address=proxy)
    async with httpx.AsyncClient(base_url=stack.services["publisher"].url, transport=transport) as client:
        await client.get("/v1/public/stats", headers={"x-forwarded-for": SPOOFED, "x-request-id": request_id})
    assert await _client_seen(stack, request_id) == SPOOFED


async def test_behind_a_trusted_proxy_the_real_client_is_used_for_the_services_and_the_rate_limit(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    # The Kubernetes shape: an ingress controller (here: this test, on 127.0.0.1) in front of the gateway.
    config = gateway_config.with_changes(**{**RELAXED, "rate_limits": {
        **RELAXED["rate_limits"], "anonymous_writes": {"per_minute": 1, "burst": 0}}})
    gateway = stack.another_gateway(documents, config=config, trusted_proxies=["127.0.0.1/32"])
    first, second, third = (uuid.uuid4().hex for _ in range(3))
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        await client.get("/v1/public/stats", headers={"x-forwarded-for": SPOOFED, "x-request-id": first})

        async def report(address: str, request_id: str) -> httpx.Response:
            return await client.post("/v1/recipients/rcp_x/reports", json={"reason": "other"},
                                     headers={"x-forwarded-for": address, "x-request-id": request_id})

        alice = [await report("198.51.100.1", second), await report("198.51.100.1", uuid.uuid4().hex)]
        bob = await report("198.51.100.2", third)
    assert await _client_seen(stack, first) == SPOOFED
    assert await _client_seen(stack, second) == "198.51.100.1"
    assert [r.status_code == 429 for r in alice] == [False, True]
    assert bob.status_code != 429, "another client does not share the first one's allowance"
    assert await _client_seen(stack, third) == "198.51.100.2"


# ---- request id and trace context -----------------------------------------------------------------


def _admin(issuer: DevIssuer) -> dict[str, str]:
    return {"authorization": f"Bearer {issuer.token(Role.ADMIN, subject='admin-gw')}"}


def _organisation(name: str) -> dict[str, Any]:
    return {"name": name, "kind": "ngo", "area_codes": ["31.71"],
            "contact": {"name": "Sekretariat", "email": "sekretariat@peduli.example"}}


async def test_request_id_and_traceparent_reach_the_service_logs_and_the_emitted_event(
    stack: Platform, dev_issuer: DevIssuer, module_env: dict[str, Any]
) -> None:
    request_id = f"req-{uuid.uuid4().hex}"
    traceparent = new_traceparent()
    topic = f"{module_env['topic_prefix']}ksbb.registry.organisations"
    async with TopicReader(module_env["kafka_bootstrap"], [topic]) as reader:
        async with httpx.AsyncClient(base_url=stack.url, timeout=20) as client:
            created = await client.post("/v1/organisations", json=_organisation("Lembaga Jejak"), headers={
                **_admin(dev_issuer), "x-request-id": request_id, "traceparent": traceparent,
                "idempotency-key": uuid.uuid4().hex})
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"] == request_id
        organisation_id = created.json()["organisation_id"]
        envelopes = await reader.wait_for(lambda found: any(e.subject == organisation_id for e in found),
                                          timeout=90)
    (event,) = [e for e in envelopes if e.subject == organisation_id]
    assert (event.model_extra or {}).get("requestid") == request_id
    assert trace_id(event.traceparent) == trace_id(traceparent)
    lines = stack.log.of_request(request_id)
    assert [line["service"] for line in lines if line["logger"] == "ksbb.access"] == ["registry"]
    assert lines and all(line.get("trace_id") == trace_id(traceparent) for line in lines), lines
    gateway_line = next(json.loads(line) for line in stack.gateway.log_lines() if request_id in line)
    assert gateway_line["traceparent"] == traceparent


async def test_the_gateway_creates_request_id_and_trace_when_the_client_sends_none_or_garbage(
    stack: Platform
) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as client:
        bare = await client.get("/v1/public/stats")
        garbage = await client.get("/v1/public/stats", headers={
            "x-request-id": "no spaces\tor controls allowed", "traceparent": "00-nonsense-01"})
        zeros = await client.get("/v1/public/stats", headers={"traceparent": f"00-{'0' * 32}-{'1' * 16}-01"})
    for response in (bare, garbage, zeros):
        request_id = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
        (line,) = await eventually(lambda rid=request_id: stack.log.access(rid), within=10, what="access line")
        gateway_line = await eventually(
            lambda rid=request_id: next((json.loads(x) for x in stack.gateway.log_lines() if rid in x), None),
            within=10, what="gateway access line")
        # The trace the gateway started is the one the service continued.
        assert line["trace_id"] == trace_id(gateway_line["traceparent"]) is not None
        assert gateway_line["traceparent"] != "00-nonsense-01"
