"""Through the real nginx: every OpenAPI operation of every service reaches its owner; nothing internal leaks."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from ksbb_gateway.config import GatewayConfig
from ksbb_gateway.merge import merge_openapi
from ksbb_gateway.routes import is_public, operations, route_table, sample_path
from ksbb_gateway.testing import Platform
from ksbb_kit.testing.waiting import eventually
from openapi_spec_validator import validate

pytestmark = pytest.mark.integration


def _all_operations(documents: dict[str, dict[str, Any]]) -> list[Any]:
    return [op for service, document in documents.items() for op in operations(service, document)]


async def _send(client: httpx.AsyncClient, method: str, path: str, request_id: str) -> int:
    """One request with a unique request id; streams are closed as soon as their headers arrive."""
    headers = {"x-request-id": request_id, "authorization": "Bearer not-a-valid-token"}
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    if body is not None:
        headers["content-type"] = "application/json"
    async with client.stream(method, path, headers=headers, content=body) as response:
        return response.status_code


async def test_every_public_operation_of_every_service_reaches_its_owner(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    public = [op for op in _all_operations(documents) if is_public(op, gateway_config)]
    assert len(public) == sum(len(r.methods) for r in route_table(documents, gateway_config))
    sent: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        for op in public:
            request_id = f"route-{uuid.uuid4().hex}"
            sent[request_id] = op
            await _send(client, op.method, sample_path(op.path), request_id)

    def arrived() -> list[str]:
        missing = []
        for request_id, op in sent.items():
            lines = stack.log.access(request_id)
            if [(line["service"], line["http"]["method"], line["http"]["route"]) for line in lines] != [
                (op.service, op.method, op.path)
            ]:
                missing.append(f"{op.method} {op.path} ({op.service}): {[line.get('http') for line in lines]}")
        assert not missing, "\n".join(missing)
        return list(sent)

    # Exactly one access line per request, written by the owner, whose router matched that very operation.
    await eventually(arrived, within=20, what="every operation answered by its owner")


async def test_internal_routes_of_every_service_are_not_reachable(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    internal = {op.path for op in _all_operations(documents) if not is_public(op, gateway_config)}
    assert {"/healthz", "/readyz", "/metrics"} <= internal
    tricks = [
        "/METRICS", "/metrics/", "//metrics", "/v1/../metrics", "/v1/public/needs/x/../../../readyz",
        "/svc/registry/metrics", "/svc/registry/healthz", "/svc/pledges/readyz", "/svc/registry/../../metrics",
        "/v1/public/../../metrics", "/static/../metrics", "/docs/../metrics",
    ]
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        for path in sorted(internal):
            request_id = f"internal-{uuid.uuid4().hex}"
            response = await client.get(sample_path(path), headers={"x-request-id": request_id})
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"
            assert stack.log.access(request_id) == []
    host, port = stack.url.removeprefix("http://").split(":")
    seen = len(stack.log.lines)
    for path in tricks:  # raw request lines: clients would normalise these paths before sending
        status, body = await _raw_get(host, int(port), path, request_id=f"trick-{uuid.uuid4().hex}")
        assert status in (400, 404), (path, status)
        assert json.loads(body)["code"] in ("not_found", "bad_request"), path
    # The gateway's own access log: none of these requests was passed to any service.
    tricked = await eventually(lambda: [json.loads(line) for line in stack.gateway.log_lines()
                                        if '"request_id":"trick-' in line], within=10, what="gateway access log")
    assert len(tricked) == len(tricks) and all(entry["upstream"] == "" for entry in tricked)
    assert not [line for line in stack.log.lines[seen:] if line.get("logger") == "ksbb.access"]


async def _raw_get(host: str, port: int, path: str, *, request_id: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Request-ID: {request_id}\r\n"
                 "Connection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_the_split_need_paths_go_to_two_services(stack: Platform) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        for path, owner, route in [
            ("/v1/needs/need_1", "registry", "/v1/needs/{need_id}"),
            ("/v1/needs/need_1/cancel", "registry", "/v1/needs/{need_id}/cancel"),
            ("/v1/needs/need_1/ledger", "pledges", "/v1/needs/{need_id}/ledger"),
            ("/v1/needs/need_1/pledges", "pledges", "/v1/needs/{need_id}/pledges"),
            ("/v1/recipients/r_1/pledges", "pledges", "/v1/recipients/{recipient_id}/pledges"),
            ("/v1/recipients/r_1/needs", "registry", "/v1/recipients/{recipient_id}/needs"),
        ]:
            request_id = uuid.uuid4().hex
            method = "POST" if path.endswith(("cancel", "/needs")) else "GET"
            await _send(client, method, path, request_id)
            lines = await eventually(lambda rid=request_id: stack.log.access(rid), within=10, what=path)
            assert [(line["service"], line["http"]["route"]) for line in lines] == [(owner, route)]
        unknown = await client.get("/v1/needs/need_1/unknown")
        assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


async def test_merged_document_and_docs_page_are_served(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        merged = (await client.get("/v1/openapi.json")).json()
        validate(merged)
        assert merged["openapi"].startswith("3.1")
        assert merged == merge_openapi(documents, route_table(documents, gateway_config), gateway_config)
        page = await client.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for asset in ("/docs/vendor/swagger-ui-bundle.js", "/docs/vendor/swagger-ui-standalone-preset.js",
                      "/docs/vendor/swagger-ui.css", "/docs/init.js", "/docs/docs.css"):
            assert asset in page.text, asset
            assert (await client.get(asset)).status_code == 200, asset
        assert "cdn" not in page.text.lower() and "https://" not in page.text
        for service in gateway_config.services:
            assert f"/svc/{service}/asyncapi" in page.text


async def test_each_service_keeps_its_own_docs_behind_the_gateway(
    stack: Platform, documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        for service in gateway_config.services:
            prefix = f"/svc/{service}"
            docs = await client.get(f"{prefix}/docs")
            assert docs.status_code == 200 and f"{prefix}/openapi.json" in docs.text, service
            own = (await client.get(f"{prefix}/openapi.json")).json()
            assert own["paths"].keys() == documents[service]["paths"].keys()
            # "Try it out" calls /v1/... on the gateway itself, the one path space, not the docs prefix.
            assert "servers" not in own
            assert (await client.get(f"{prefix}/redoc")).status_code == 200
            asyncapi = await client.get(f"{prefix}/asyncapi.json")
            assert asyncapi.status_code == 200 and asyncapi.json()["asyncapi"].startswith("3.")
            assert (await client.get(f"{prefix}/asyncapi")).status_code == 200


async def test_public_page_static_files_and_feeds_come_from_the_publisher(stack: Platform) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        for path in ("/", "/static/style.css", "/static/live.js", "/v1/public/feed.atom", "/v1/public/feed"):
            request_id = uuid.uuid4().hex
            response = await client.get(path, headers={"x-request-id": request_id})
            assert response.status_code == 200, path
            lines = await eventually(lambda rid=request_id: stack.log.access(rid), within=10, what=path)
            assert {line["service"] for line in lines} == {"publisher"}, path
        page = await client.get("/")
        assert "/docs" in page.text
