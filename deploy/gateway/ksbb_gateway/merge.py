"""The merged OpenAPI 3.1 document of the public API, served by the gateway at /v1/openapi.json."""

from __future__ import annotations

import copy
import json
from typing import Any

from ksbb_gateway.config import GatewayConfig
from ksbb_gateway.routes import HTTP_METHODS, Route

MERGED_PATH = "/v1/openapi.json"
_REF_PREFIX = "#/components/"


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    """Rewrite `$ref`s to components that had to be renamed."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value in renames:
                out[key] = renames[value]
            else:
                out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _description(config: GatewayConfig) -> str:
    prefix = config.docs.prefix
    lines = [
        "**Bahasa Indonesia.** Satu API untuk seluruh layanan KSBB, melalui satu gerbang (gateway). "
        "Setiap operasi diteruskan ke layanan pemiliknya (lihat `x-ksbb-service`). Galat selalu berupa JSON "
        "`{code, message, field?, details?}`; 429 menyertakan `Retry-After`.",
        "",
        "**English.** One API for every KSBB service through one gateway. Each operation is routed to the "
        "service that owns it (see `x-ksbb-service`). Errors are always JSON `{code, message, field?, details?}`; "
        "429 answers carry `Retry-After`. Send `X-Request-ID` and a W3C `traceparent` to follow a request "
        "through logs and the events it causes.",
        "",
        "Events (AsyncAPI) and each service's own documentation / Peristiwa (AsyncAPI) dan dokumentasi per layanan:",
        "",
    ]
    for service in config.services:
        lines.append(f"- **{service}**: [AsyncAPI]({prefix}/{service}/asyncapi) "
                     f"([JSON]({prefix}/{service}/asyncapi.json)) · [OpenAPI]({prefix}/{service}/docs)")
    return "\n".join(lines)


def merge_openapi(
    documents: dict[str, dict[str, Any]], routes: list[Route], config: GatewayConfig, *, version: str | None = None
) -> dict[str, Any]:
    """One OpenAPI 3.1 document holding exactly the public operations of the route table.

    Component names shared by services are kept once when identical and prefixed with the service
    name when they differ; every operation says which service answers it (`x-ksbb-service`).
    """
    owned = {(r.service, r.path) for r in routes if r.path.startswith("/v1/")}
    components: dict[str, dict[str, Any]] = {}
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, Any]] = {}
    versions = set()
    for service in config.services:
        document = copy.deepcopy(documents[service])
        versions.add(document.get("info", {}).get("version", "0"))
        renames: dict[str, str] = {}
        for kind, entries in document.get("components", {}).items():
            merged_kind = components.setdefault(kind, {})
            for name, value in entries.items():
                if name in merged_kind and _canonical(merged_kind[name]) != _canonical(value):
                    if kind == "securitySchemes":  # referred to by name in `security`, not by $ref
                        raise ValueError(f"security scheme {name!r} differs between services")
                    renamed = f"{service.capitalize()}{name}"
                    renames[f"{_REF_PREFIX}{kind}/{name}"] = f"{_REF_PREFIX}{kind}/{renamed}"
        document = _rename_refs(document, renames)
        for kind, entries in document.get("components", {}).items():
            for name, value in entries.items():
                target = renames.get(f"{_REF_PREFIX}{kind}/{name}", f"{_REF_PREFIX}{kind}/{name}")
                components[kind][target.rsplit("/", 1)[1]] = value
        for path, item in document.get("paths", {}).items():
            if (service, path) not in owned:
                continue
            if path in paths:
                raise ValueError(f"{path} is defined by two services")
            merged_item = {}
            for key, value in item.items():
                if key in HTTP_METHODS:
                    value = {**value, "x-ksbb-service": service}
                    for tag in value.get("tags", []):
                        tags.setdefault(tag, {"name": tag, "x-ksbb-services": []})
                        if service not in tags[tag]["x-ksbb-services"]:
                            tags[tag]["x-ksbb-services"].append(service)
                merged_item[key] = value
            paths[path] = merged_item
    for tag in tags.values():
        owners = ", ".join(tag["x-ksbb-services"])
        tag["description"] = f"Layanan / service: {owners}"
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "KSBB Platform API",
            "version": version or "+".join(sorted(versions)),
            "description": _description(config),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "Gateway / gerbang"}],
        "paths": dict(sorted(paths.items())),
        "components": {kind: dict(sorted(entries.items())) for kind, entries in sorted(components.items())},
        "tags": sorted(tags.values(), key=lambda t: t["name"]),
        "x-ksbb-asyncapi": {s: f"{config.docs.prefix}/{s}/asyncapi.json" for s in config.services},
    }
    _prune_unused_components(merged)
    return merged


def _prune_unused_components(document: dict[str, Any]) -> None:
    """Drop component schemas no public operation refers to (internal routes' models)."""
    components = document.get("components", {})
    used: set[str] = set()
    pending = [document["paths"]]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith(_REF_PREFIX) and value not in used:
                    used.add(value)
                    kind, name = value[len(_REF_PREFIX):].split("/", 1)
                    if name in components.get(kind, {}):
                        pending.append(components[kind][name])
                else:
                    pending.append(value)
        elif isinstance(node, list):
            pending.extend(node)
    for kind in ("schemas", "responses", "parameters", "requestBodies", "headers", "examples"):
        if kind in components:
            components[kind] = {n: v for n, v in components[kind].items() if f"{_REF_PREFIX}{kind}/{n}" in used}
            if not components[kind]:
                del components[kind]
