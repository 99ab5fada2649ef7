"""Errors and documents agree: one error body for every 4xx/5xx the kit or the framework answers, bodies over the
limit refused before parsing and authentication, and every such response listed in the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter
from ksbb_kit.auth import CurrentPrincipal, Role
from ksbb_kit.http_limits import max_body_bytes
from ksbb_kit.runtime import ServiceRuntime
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.service import running, served
from pydantic import BaseModel

pytestmark = pytest.mark.integration
KB = 1024


class LimitSettings(KitSettings):
    """A service with a small body limit."""

    service_name: ClassVar[str] = "pledges"


class Thing(BaseModel):
    """A body."""

    name: str
    count: int


def limited_app(settings: KitSettings) -> Any:
    runtime = ServiceRuntime(settings, title="limits", description="body limits")
    api = APIRouter(prefix="/v1")
    seen: list[str] = []

    @api.post("/things", status_code=201)
    async def create(thing: Thing, principal: CurrentPrincipal) -> dict[str, Any]:
        seen.append(thing.name)
        return {"name": thing.name, "by": principal.role.value}

    @api.post("/uploads", openapi_extra=max_body_bytes(64 * KB))
    async def upload(thing: Thing, principal: CurrentPrincipal) -> dict[str, int]:
        return {"bytes": len(thing.name)}

    @api.get("/things/{thing_id}")
    async def one(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    app = runtime.create_app([api])
    app.state.seen = seen
    return app


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["message"], body
    assert set(body) <= {"code", "message", "field", "details"}, "the one error body, never {'detail': ...}"
    return body


async def test_framework_errors_use_the_project_error_body(kit_env: dict[str, Any], dev_issuer: Any) -> None:
    app = limited_app(LimitSettings(**kit_env, max_request_body_bytes=8 * KB))
    token = {"authorization": f"Bearer {dev_issuer.token(Role.DONOR, subject='d-1')}"}
    async with running(app) as client:
        not_json = await client.post("/v1/things", content=b'{"name": "a",', headers={
            **token, "content-type": "application/json"})
        assert error(not_json, 400, "malformed_json")["field"] == "body"
        not_utf8 = await client.post("/v1/things", content=b'{"name": "\xff"}', headers={
            **token, "content-type": "application/json"})
        assert not_utf8.status_code in (400, 422) and not_utf8.json()["code"] in ("malformed_json", "malformed_body")
        options = await client.options("/v1/things")
        error(options, 405, "method_not_allowed")
        assert options.headers["allow"] == "POST", "405 names the methods that are allowed"
        error(await client.get("/v1/nowhere"), 404, "not_found")
        invalid = error(await client.post("/v1/things", json={"name": "a", "count": "many"}, headers=token),
                        422, "validation_error")
        assert invalid["field"] == "count"
        created = await client.post("/v1/things", json={"name": "ok", "count": 1}, headers=token)
        assert created.status_code == 201


async def test_a_body_over_the_limit_is_refused_before_parsing_and_before_authentication(
    kit_env: dict[str, Any], dev_issuer: Any
) -> None:
    app = limited_app(LimitSettings(**kit_env, max_request_body_bytes=8 * KB))
    big = b'{"name": "' + b"x" * (16 * KB) + b'", "count": 1}'
    token = {"authorization": f"Bearer {dev_issuer.token(Role.DONOR, subject='d-1')}"}
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        # No token at all: the size is refused first (a 401 would mean the body was read to authenticate).
        declared = await client.post("/v1/things", content=big, headers={"content-type": "application/json"})
        assert error(declared, 413, "payload_too_large")["details"] == {"max_body_bytes": 8 * KB}
        assert declared.headers["x-request-id"], "refusals carry the request id like every response"

        async def chunks() -> AsyncIterator[bytes]:
            yield big[: 4 * KB]
            yield big[4 * KB:]

        streamed = await client.post("/v1/things", content=chunks(), headers={"content-type": "application/json"})
        error(streamed, 413, "payload_too_large")
        # A route declaring a larger limit takes more; its own limit still holds.
        upload = await client.post("/v1/uploads", content=big, headers={**token, "content-type": "application/json"})
        assert upload.status_code == 200, upload.text
        huge = b'{"name": "' + b"x" * (80 * KB) + b'", "count": 1}'
        error(await client.post("/v1/uploads", content=huge, headers={**token, "content-type": "application/json"}),
              413, "payload_too_large")
        small = await client.post("/v1/things", json={"name": "small", "count": 1}, headers=token)
        assert small.status_code == 201
    assert app.state.seen == ["small"], "no refused body reached the handler"


async def test_an_operator_aligns_a_route_limit_with_the_gateway(kit_env: dict[str, Any], dev_issuer: Any) -> None:
    settings = LimitSettings(**kit_env, max_request_body_bytes=8 * KB, max_request_body_routes={"/v1/things": 32 * KB})
    token = {"authorization": f"Bearer {dev_issuer.token(Role.DONOR, subject='d-1')}"}
    body = {"name": "y" * (16 * KB), "count": 1}
    async with running(limited_app(settings)) as client:
        assert (await client.post("/v1/things", json=body, headers=token)).status_code == 201


async def test_the_openapi_document_lists_the_responses_the_kit_gives(kit_env: dict[str, Any]) -> None:
    app = limited_app(LimitSettings(**kit_env, max_request_body_bytes=8 * KB))
    document = app.openapi()
    create = document["paths"]["/v1/things"]["post"]
    assert {"201", "400", "401", "403", "413", "422", "500"} <= set(create["responses"])
    assert create["x-max-body-bytes"] == 8 * KB
    assert document["paths"]["/v1/uploads"]["post"]["x-max-body-bytes"] == 64 * KB
    one = document["paths"]["/v1/things/{thing_id}"]["get"]
    assert {"200", "404", "422", "500"} <= set(one["responses"]) and "401" not in one["responses"]
    for status in ("400", "413", "422", "500"):
        schema = create["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
