"""The kit's side of the gateway: request ids, trace ids, access lines, trusted proxies and root_path."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from cloudevents.core.formats.json import JSONFormat
from fastapi import FastAPI
from fastapi.routing import APIRoute
from ksbb_contracts import CloudEvent
from ksbb_kit.http import enter_request_context, route_template
from ksbb_kit.logging import JsonFormatter
from ksbb_kit.runtime import server_config
from ksbb_kit.settings import KitSettings
from ksbb_kit.tracing import (
    accept_request_id,
    child_of,
    current_request_id,
    current_traceparent,
    new_traceparent,
    request_id_extension,
    request_id_of,
    set_request_id,
    trace_id,
)
from pydantic import ValidationError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("value", ["req-1", "a" * 128, "0af7651916cd43dd8448eb211c80319c", "app:42.b_c"])
def test_well_formed_request_ids_are_kept(value: str) -> None:
    assert accept_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "a" * 129, "-leading-dash", "two words", "x\nforged=1", 'q"uote'])
def test_other_request_ids_are_replaced(value: str | None) -> None:
    replaced = accept_request_id(value)
    assert replaced != value and len(replaced) == 32 and int(replaced, 16) >= 0


def test_all_zero_trace_ids_start_a_new_trace() -> None:
    zero = f"00-{'0' * 32}-{'1' * 16}-01"
    assert trace_id(zero) is None and trace_id(child_of(zero)) != "0" * 32
    parent = new_traceparent()
    assert trace_id(child_of(parent)) == trace_id(parent)


def test_the_request_context_comes_from_the_headers() -> None:
    parent = new_traceparent()
    request_id = enter_request_context({"x-request-id": "abc-1", "traceparent": parent})
    assert request_id == current_request_id() == "abc-1"
    assert trace_id(current_traceparent()) == trace_id(parent) and current_traceparent() != parent


def test_the_request_id_travels_as_a_cloudevents_extension_attribute() -> None:
    set_request_id("req-77")
    try:
        envelope = CloudEvent(id="evt_1", source="/ksbb/registry", type="ksbb.need.opened.v1", subject="need_1",
                              time=datetime(2026, 1, 5, tzinfo=UTC), data={"x": 1}, **request_id_extension())
    finally:
        set_request_id(None)
    raw = envelope.to_bytes()
    assert json.loads(raw)["requestid"] == "req-77"
    assert request_id_of(CloudEvent.from_bytes(raw).model_extra) == "req-77"
    # The CloudEvents SDK reads it as an extension attribute and writes it back unchanged.
    event = JSONFormat().read(None, raw)
    assert event.get_extension("requestid") == "req-77"
    assert json.loads(JSONFormat().write(event))["requestid"] == "req-77"
    assert request_id_of({"requestid": "bad id"}) is None and request_id_extension() == {}


def test_every_log_line_carries_request_and_trace_id_and_redacts_structured_fields() -> None:
    parent = new_traceparent()
    enter_request_context({"x-request-id": "req-9", "traceparent": parent})
    record = logging.LogRecord("ksbb.access", logging.INFO, __file__, 1, "GET /v1/x 200", None, None)
    record.http = {"path": "/v1/x", "note": "mail budi@example.org"}
    record.service = "registry"
    line = json.loads(JsonFormatter("fallback").format(record))
    assert line["request_id"] == "req-9" and line["trace_id"] == trace_id(parent)
    assert line["service"] == "registry" and line["http"]["note"] == "mail [email]"
    set_request_id(None)


def test_the_route_template_includes_the_prefixes_of_included_routers() -> None:
    route = APIRoute("/needs/{need_id}", endpoint=lambda need_id: None)
    scope = {"path": "/svc/registry/v1/needs/n1", "root_path": "/svc/registry", "route": route}
    assert route_template(scope) == "/v1/needs/{need_id}"
    assert route_template({"path": "/", "root_path": "", "route": APIRoute("/", endpoint=lambda: None)}) == "/"
    assert route_template({"path": "/nowhere"}) == "unmatched"


def test_services_trust_forwarding_headers_from_nobody_unless_configured() -> None:
    app = FastAPI()
    default = server_config(app, KitSettings())
    assert default.proxy_headers is False and default.forwarded_allow_ips == []
    assert app.root_path_in_servers is False
    configured = KitSettings(forwarded_allow_ips="127.0.0.2, 10.0.0.0/8", root_path="/svc/registry")
    config = server_config(FastAPI(), configured)
    assert config.proxy_headers is True and config.forwarded_allow_ips == ["127.0.0.2", "10.0.0.0/8"]
    assert config.root_path == "/svc/registry"
    with pytest.raises(ValidationError, match="not an IP address"):
        KitSettings(forwarded_allow_ips="gateway.example")
    with pytest.raises(ValidationError):
        KitSettings(root_path="svc/no-leading-slash")
