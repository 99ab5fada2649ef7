"""Through the real nginx: CORS, body and rate limits, the gateway's JSON errors, headers, compression, SSE."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ksbb_gateway.config import GatewayConfig
from ksbb_gateway.testing import RELAXED, Platform
from ksbb_kit.errors import ErrorBody
from ksbb_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration

ALLOWED = "http://localhost:5173"
STRANGER = "https://elsewhere.example"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
                "access-control-allow-headers", "access-control-expose-headers", "access-control-max-age")
MB = 1024 * 1024


def _error(response: httpx.Response, status: int, code: str) -> ErrorBody:
    """The project's JSON error body (never nginx's HTML page)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = ErrorBody.model_validate(response.json())
    assert body.code == code
    return body


# ---- CORS -------------------------------------------------------------------------------------------


async def test_preflight_from_an_allowed_origin_is_answered_by_the_gateway(stack: Platform) -> None:
    request_id = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=stack.url) as client:
        response = await client.options("/v1/pledges", headers={
            "origin": ALLOWED, "access-control-request-method": "POST", "x-request-id": request_id,
            "access-control-request-headers": "authorization, content-type, idempotency-key",
        })
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= {h.strip() for h in allowed_headers.split(",")}
    assert "origin" in response.headers["vary"].lower()
    await asyncio.sleep(0.3)
    assert stack.log.access(request_id) == [], "the preflight reached a service"


async def test_an_unlisted_origin_gets_no_cors_headers(stack: Platform) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as client:
        preflight = await client.options("/v1/pledges", headers={
            "origin": STRANGER, "access-control-request-method": "POST"})
        simple = await client.get("/v1/public/stats", headers={"origin": STRANGER})
        spoofed = await client.get("/v1/public/stats", headers={"origin": ALLOWED + ".evil.example"})
    assert preflight.status_code == 204
    for response in (preflight, simple, spoofed):
        assert not [h for h in CORS_HEADERS if h in response.headers], response.headers
    assert simple.status_code == 200


async def test_an_allowed_origin_sees_cors_headers_on_actual_responses(stack: Platform) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as client:
        response = await client.get("/v1/public/stats", headers={"origin": ALLOWED})
        error = await client.get("/v1/nowhere", headers={"origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    assert "origin" in response.headers["vary"].lower()
    # Errors must be readable cross-origin too, or a browser app could not show them.
    assert error.headers["access-control-allow-origin"] == ALLOWED


# ---- body limit -----------------------------------------------------------------------------------


async def test_a_body_over_one_megabyte_is_refused_before_any_service_sees_it(stack: Platform) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        declared_id, chunked_id, small_id = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
        declared = await client.post("/v1/recipients/rcp_x/reports", content=b"{" + b" " * (2 * MB) + b"}",
                                     headers={"x-request-id": declared_id, "content-type": "application/json"})
        body = _error(declared, 413, "payload_too_large")
        assert body.details == {"max_body_size": "1m"}

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield b" " * 65536

        with contextlib.suppress(httpx.WriteError, httpx.RemoteProtocolError):
            streamed = await client.post("/v1/recipients/rcp_x/reports", content=chunks(),
                                         headers={"x-request-id": chunked_id, "content-type": "application/json"})
            _error(streamed, 413, "payload_too_large")
        small = await client.post("/v1/recipients/rcp_x/reports", content=b"{}" + b" " * (MB - 4096),
                                  headers={"x-request-id": small_id, "content-type": "application/json"})
    assert small.status_code != 413
    await eventually(lambda: stack.log.access(small_id), within=10, what="the small body reached the registry")
    assert stack.log.access(declared_id) == [] and stack.log.access(chunked_id) == []
    logged = [line for line in stack.gateway.log_lines() if declared_id in line or chunked_id in line]
    assert logged and all('"upstream":""' in line for line in logged), logged


async def test_a_route_configured_for_larger_bodies_accepts_them_and_only_it(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    config = gateway_config.with_changes(
        **RELAXED, limits={"larger_bodies": [{"path": "/v1/organisations", "body": "3m"}]})
    gateway = stack.another_gateway(documents, config=config)
    payload = b"{" + b" " * (2 * MB) + b"}"
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        allowed_id = uuid.uuid4().hex
        allowed = await client.post("/v1/organisations", content=payload, headers={
            "x-request-id": allowed_id, "content-type": "application/json", "authorization": "Bearer x"})
        elsewhere = await client.post("/v1/recipients", content=payload, headers={
            "content-type": "application/json", "authorization": "Bearer x"})
        too_big = await client.post("/v1/organisations", content=b" " * (4 * MB), headers={
            "content-type": "application/json", "authorization": "Bearer x"})
    # The gateway passed it on: the registry answered (its own limits or the token decide, not the gateway's).
    assert [line["service"] for line in await eventually(lambda: stack.log.access(allowed_id), within=10)] == [
        "registry"]
    assert allowed.json().get("details", {}).get("max_body_size") is None
    passed = [json.loads(line) for line in gateway.log_lines() if allowed_id in line]
    assert passed and passed[0]["upstream"] != ""
    assert _error(elsewhere, 413, "payload_too_large").details == {"max_body_size": "1m"}
    assert _error(too_big, 413, "payload_too_large").details == {"max_body_size": "3m"}


# ---- rate limits ----------------------------------------------------------------------------------


async def test_anonymous_writes_have_their_own_strict_limit_with_retry_after(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    config = gateway_config.with_changes(**{**RELAXED, "rate_limits": {
        **RELAXED["rate_limits"], "anonymous_writes": {"per_minute": 1, "burst": 1}}})
    gateway = stack.another_gateway(documents, config=config)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        anonymous = [await client.post("/v1/recipients/rcp_x/reports", json={"reason": "fake", "details": "x"},
                                       headers={"x-request-id": uuid.uuid4().hex}) for _ in range(3)]
        signed_in = [await client.post("/v1/recipients/rcp_x/reports", json={"reason": "fake"},
                                       headers={"authorization": "Bearer x"}) for _ in range(3)]
        reads = [await client.get("/v1/public/stats") for _ in range(3)]
    assert [r.status_code == 429 for r in anonymous] == [False, False, True]
    _error(anonymous[2], 429, "too_many_requests")
    assert anonymous[2].headers["retry-after"] == "60"
    assert 429 not in [r.status_code for r in signed_in + reads]
    refused_id = anonymous[2].headers["x-request-id"]
    await asyncio.sleep(0.3)
    assert stack.log.access(refused_id) == []


async def test_each_client_has_a_request_rate_and_gets_json_429_with_retry_after(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    config = gateway_config.with_changes(rate_limits={"per_client": {"per_second": 1, "burst": 1}})
    gateway = stack.another_gateway(documents, config=config)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        responses = [await client.get("/v1/public/stats") for _ in range(20)]
    refused = [r for r in responses if r.status_code == 429]
    assert refused, [r.status_code for r in responses]
    for response in refused:
        _error(response, 429, "too_many_requests")
        assert response.headers["retry-after"] == "1"
    assert responses[0].status_code == 200 and "retry-after" not in responses[0].headers


# ---- the gateway's own errors ---------------------------------------------------------------------


async def test_an_unreachable_service_is_a_json_502(
    stack: Platform, documents: dict[str, dict[str, Any]]
) -> None:
    from ksbb_gateway.local import free_port

    upstreams = {**stack.upstreams(), "registry": f"127.0.0.1:{free_port()}"}
    gateway = stack.another_gateway(documents, upstreams=upstreams)
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        down = await client.get("/v1/areas")
        up = await client.get("/v1/public/stats")
    body = _error(down, 502, "service_unavailable")
    assert body.details == {"request_id": down.headers["x-request-id"]}
    assert up.status_code == 200


async def test_a_service_that_does_not_answer_in_time_is_a_json_504(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read(65536)
            await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        config = gateway_config.with_changes(**RELAXED, limits={"read_timeout_seconds": 1})
        gateway = stack.another_gateway(documents, config=config,
                                        upstreams={**stack.upstreams(), "registry": f"127.0.0.1:{port}"})
        async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as client:
            response = await client.get("/v1/areas")
        _error(response, 504, "service_timeout")
    finally:
        server.close()


async def test_unknown_paths_and_methods_get_json_errors(stack: Platform) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as client:
        _error(await client.get("/nothing-here"), 404, "not_found")
        _error(await client.get("/v1"), 404, "not_found")
        _error(await client.post("/v1/openapi.json"), 405, "method_not_allowed")


# ---- headers and compression -----------------------------------------------------------------------


async def test_security_headers_per_kind_of_response(stack: Platform) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as client:
        api = await client.get("/v1/public/stats")
        page = await client.get("/")
        docs = await client.get("/docs")
        service_docs = await client.get("/svc/registry/docs")
    for response in (api, page, docs, service_docs):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers  # no TLS on this gateway
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
    page_csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in page_csp and "frame-ancestors 'none'" in page_csp
    assert "script-src 'self'" in page_csp and "unsafe-eval" not in page_csp
    assert "script-src 'self'" in docs.headers["content-security-policy"]
    # FastAPI's own docs pages load Swagger UI from a CDN; they are left without a policy that breaks them.
    assert "content-security-policy" not in service_docs.headers


async def test_hsts_when_tls_is_on(stack: Platform, documents: dict[str, dict[str, Any]]) -> None:
    gateway = stack.another_gateway(documents, tls_offloaded=True)
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        for path in ("/v1/public/stats", "/", "/nowhere"):
            response = await client.get(path)
            assert response.headers["strict-transport-security"].startswith("max-age="), path


async def test_gzip_for_json_csv_and_atom_but_never_for_event_streams(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    config = gateway_config.with_changes(**RELAXED, gzip={"min_length": 1})
    gateway = stack.another_gateway(documents, config=config)
    gzip = {"accept-encoding": "gzip"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        for path, kind in (("/v1/areas/tree", "application/json"), ("/v1/public/stats", "application/json"),
                           ("/v1/public/exports/recipients.csv", "text/csv"),
                           ("/v1/public/feed.atom", "application/atom+xml"), ("/", "text/html")):
            response = await client.get(path, headers=gzip)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith(kind), (path, response.headers["content-type"])
            assert response.headers.get("content-encoding") == "gzip", path
            plain = await client.get(path, headers={"accept-encoding": "identity"})
            assert "content-encoding" not in plain.headers, path
        async with client.stream("GET", "/v1/public/feed/stream", headers=gzip) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in stream.headers


# ---- server-sent events ---------------------------------------------------------------------------


async def test_sse_heartbeats_arrive_through_the_gateway_and_outlive_the_normal_read_timeout(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    # Ordinary routes time out after 1 s of silence here; the stream is silent for 2 s between heartbeats
    # and stays open. Each heartbeat arrives on its own: a buffering proxy would hold these bytes back.
    config = gateway_config.with_changes(**RELAXED, limits={"read_timeout_seconds": 1})
    gateway = stack.another_gateway(documents, config=config)
    heartbeats = 0
    async with httpx.AsyncClient(base_url=gateway.url, timeout=httpx.Timeout(10, read=20)) as client:
        async with client.stream("GET", "/v1/public/feed/stream",
                                 headers={"accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-cache"
            async for line in stream.aiter_lines():
                if line.startswith(": heartbeat"):
                    heartbeats += 1
                if heartbeats == 3:
                    break
    assert heartbeats == 3
