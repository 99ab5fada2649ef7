"""The route table, the merged document and the renderings, checked against the services' OpenAPI documents."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from typing import Any

import pytest
from ksbb_gateway.config import GatewayConfig, load_config
from ksbb_gateway.merge import merge_openapi
from ksbb_gateway.render import (
    CONTAINER_PATHS,
    MERGED_DOCUMENT,
    render_nginx,
    rendered_outputs,
    stale_outputs,
)
from ksbb_gateway.routes import (
    AmbiguousRoutes,
    Route,
    ambiguities,
    is_public,
    operations,
    overlap,
    owner_of,
    route_table,
    sample_path,
    template_regex,
)
from ksbb_kit.errors import ErrorBody
from openapi_spec_validator import validate
from pydantic import ValidationError

pytestmark = pytest.mark.unit


def test_every_public_operation_has_exactly_its_owner_and_internal_ones_none(
    documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    table = route_table(documents, gateway_config)
    checked = 0
    for service, document in documents.items():
        for op in operations(service, document):
            route = owner_of(sample_path(op.path), table)
            if is_public(op, gateway_config):
                assert route is not None and route.service == service and op.method in route.methods, op
                checked += 1
            else:
                assert route is None, f"internal {op.method} {op.path} of {service} would be exposed"
    assert checked == sum(len(r.methods) for r in table) > 50


def test_no_path_is_claimed_by_two_services(
    documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    table = route_table(documents, gateway_config)
    assert ambiguities(table) == []
    owners = {path: owner_of(path, table) for path in (
        "/v1/needs/n1", "/v1/needs/n1/cancel", "/v1/needs/n1/ledger", "/v1/needs/n1/pledges", "/v1/needs")}
    assert {p: r.service for p, r in owners.items() if r} == {
        "/v1/needs/n1": "registry", "/v1/needs/n1/cancel": "registry", "/v1/needs": "registry",
        "/v1/needs/n1/ledger": "pledges", "/v1/needs/n1/pledges": "pledges"}


def test_a_path_two_services_could_answer_is_refused(
    documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    clash = copy.deepcopy(documents)
    ledger = clash["pledges"]["paths"]["/v1/needs/{need_id}/ledger"]
    clash["registry"]["paths"]["/v1/needs/{id}/ledger"] = ledger
    with pytest.raises(AmbiguousRoutes, match="ledger"):
        route_table(clash, gateway_config)
    assert overlap("/v1/public/{dataset}.{fmt}", "/v1/public/feed.atom")
    assert overlap("/v1/needs/{a}", "/v1/needs/summary")
    assert not overlap("/v1/exports/{a}.csv", "/v1/exports/{b}.json")
    assert not overlap("/v1/needs/{a}", "/v1/needs/{a}/ledger")
    assert ambiguities([Route("a", "/v1/x/{id}"), Route("a", "/v1/x/all")]) == []  # one owner: no conflict


def test_template_patterns_follow_starlette_convertors() -> None:
    assert re.match(template_regex("/v1/public/exports/{dataset}.{fmt}"), "/v1/public/exports/needs.csv")
    assert not re.match(template_regex("/v1/public/exports/{dataset}.{fmt}"), "/v1/public/exports/a/b.csv")
    assert re.match(template_regex("/v1/items/{n:int}"), "/v1/items/12")
    assert not re.match(template_regex("/v1/items/{n:int}"), "/v1/items/x")


def test_merged_document_is_valid_openapi_31_with_exactly_the_public_operations(
    documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    table = route_table(documents, gateway_config)
    merged = merge_openapi(documents, table, gateway_config)
    validate(merged)
    assert merged["openapi"] == "3.1.0"
    listed = {(method.upper(), path, op["x-ksbb-service"]) for path, item in merged["paths"].items()
              for method, op in item.items()}
    expected = {(m, r.path, r.service) for r in table if r.path.startswith("/v1/") for m in r.methods}
    assert listed == expected
    assert not [p for p in merged["paths"] if not p.startswith("/v1/")]
    text = json.dumps(merged)
    for service in gateway_config.services:
        assert f"/svc/{service}/asyncapi" in merged["info"]["description"]
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in merged["components"]["schemas"], ref


def test_committed_renderings_are_up_to_date(
    documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    stale = stale_outputs(rendered_outputs(gateway_config, documents))
    assert not stale, f"out of date: {[str(p) for p in stale]}; run `deploy/gateway/gateway render` and commit"
    validate(json.loads(MERGED_DOCUMENT.read_text()))


def test_nginx_conf_has_one_location_per_route_and_none_for_internal_paths(
    documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    table = route_table(documents, gateway_config)
    rendered = render_nginx(gateway_config, "compose", table, CONTAINER_PATHS)
    conf = rendered[rendered.index("server_name _;"):]  # the public server, not the probes' own port
    for route in table:
        location = f"location = {route.path} {{" if route.exact else f'location ~ "{route.pattern}" {{'
        assert conf.count(location) == 1, location
    for path in gateway_config.internal.paths:
        if path == "/docs":  # the gateway's own docs page (a static file), not a service's
            assert "location = /docs {\n            root " in conf
            continue
        assert f"location = {path} " not in conf, path
    stream = conf[conf.index("/v1/public/feed/stream"):]
    stream = stream[:stream.index("}")]
    assert "proxy_buffering off" in stream and "gzip off" in stream
    assert f"proxy_read_timeout {gateway_config.limits.stream_read_timeout_seconds}s" in stream
    assert "text/event-stream" not in rendered.split("gzip_types", 1)[1].split(";", 1)[0]


def test_the_gateways_own_errors_use_the_project_error_body(
    documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    conf = render_nginx(gateway_config, "local", route_table(documents, gateway_config), CONTAINER_PATHS)
    bodies = re.findall(r"return (\d{3}) '(\{.*\})';", conf)
    statuses = {status for status, _ in bodies}
    assert {"400", "404", "405", "408", "413", "414", "429", "500", "502", "504"} <= statuses
    for status, body in bodies:
        parsed = ErrorBody.model_validate(json.loads(body.replace("$ksbb_body_limit", "1m")
                                                     .replace("$ksbb_request_id", "r1")))
        assert parsed.code and parsed.message, status
    for status in ("400", "404", "405", "408", "413", "414", "429", "500", "502", "503", "504"):
        assert re.search(rf"error_page [0-9 ]*{status}[0-9 ]* = @", conf), status


def test_only_the_tls_target_sends_hsts_and_only_trusted_proxies_set_the_client_address(
    documents: dict[str, dict[str, Any]], gateway_config: GatewayConfig
) -> None:
    table = route_table(documents, gateway_config)
    local = render_nginx(gateway_config, "local", table, CONTAINER_PATHS)
    k8s = render_nginx(gateway_config, "k8s", table, CONTAINER_PATHS)
    assert "Strict-Transport-Security" not in local and "Strict-Transport-Security" in k8s
    # Local clients (127.0.0.1) are never a trusted proxy: they cannot choose their address.
    trusted = [ipaddress.ip_network(n) for n in re.findall(r"set_real_ip_from (\S+);", local)]
    assert not [n for n in trusted if ipaddress.ip_address("127.0.0.1") in n]
    assert "set_real_ip_from 10.0.0.0/8;" in k8s and "X-Forwarded-Proto https" in k8s
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in local  # replaced, never appended to


def test_configuration_refuses_unsafe_values(gateway_config: GatewayConfig) -> None:
    with pytest.raises(ValidationError, match="wildcards"):
        gateway_config.with_changes(cors={"allowed_origins": ["*"]})
    with pytest.raises(ValidationError, match="event-stream"):
        gateway_config.with_changes(gzip={"types": ["application/json", "text/event-stream"]})
    with pytest.raises(ValidationError, match="upstreams"):
        gateway_config.with_changes(services=[*gateway_config.services, "unknown"])
    with pytest.raises(ValidationError, match="nginx size"):
        gateway_config.with_changes(limits={"body": "1 MB"})


def test_make_run_and_the_local_target_use_the_same_ports() -> None:
    import importlib.util

    from ksbb_gateway.render import ROOT

    spec = importlib.util.spec_from_file_location("run_platform", ROOT / "deploy" / "local" / "run_platform.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    local = load_config().target("local")
    ports = {**module.SERVICES, **module.FRONTENDS}
    assert {name: f"127.0.0.1:{port}" for name, port in ports.items()} == local.upstreams
    assert module.GATEWAY_LISTEN == local.listen


def test_docs_page_names_every_service(gateway_config: GatewayConfig) -> None:
    from ksbb_gateway.render import SITE

    page = (SITE / "docs" / "index.html").read_text()
    script = (SITE / "docs" / "init.js").read_text()
    for service in gateway_config.services:
        assert f"/svc/{service}/asyncapi" in page and f'"{service}"' in script
    assert "http://" not in page + script and "https://" not in page + script  # nothing from elsewhere
