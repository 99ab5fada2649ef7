"""The route table: every public operation of every service, mapped to its owner, checked for ambiguity."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ksbb_gateway.config import GatewayConfig

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
# The same patterns Starlette's path convertors use, so the gateway and the service agree on a match.
_CONVERTOR = {None: "[^/]+", "str": "[^/]+", "path": ".*", "int": "[0-9]+", "float": r"[0-9]+(?:\.[0-9]+)?",
              "uuid": "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"}


class AmbiguousRoutes(ValueError):
    """Two services claim paths that one request could match."""


@dataclass(frozen=True)
class Operation:
    """One OpenAPI operation of one service."""

    service: str
    method: str
    path: str
    operation_id: str | None
    tags: tuple[str, ...]
    internal_flag: bool = False


@dataclass
class Route:
    """One path template the gateway sends to one service (all its methods)."""

    service: str
    path: str
    methods: list[str] = field(default_factory=list)
    operation_ids: list[str] = field(default_factory=list)
    streaming: bool = False
    body: str | None = None  # a larger body limit than the default, from gateway.toml

    @property
    def exact(self) -> bool:
        """True when the path has no parameters (an nginx `location =`)."""
        return _PARAM.search(self.path) is None

    @property
    def pattern(self) -> str:
        """An anchored PCRE matching the concrete paths of this template."""
        return template_regex(self.path)


def template_regex(path: str) -> str:
    """The anchored regular expression of an OpenAPI path template (Starlette's convertor semantics)."""
    parts, last = [], 0
    for match in _PARAM.finditer(path):
        parts.append(re.escape(path[last:match.start()]))
        convertor = match.group(2)
        if convertor not in _CONVERTOR:
            raise ValueError(f"{path}: unknown path convertor {convertor!r}")
        parts.append(_CONVERTOR[convertor])
        last = match.end()
    parts.append(re.escape(path[last:]))
    return "^" + "".join(parts).replace("\\-", "-") + "$"


def sample_path(path: str, value: str = "x") -> str:
    """A concrete path for a template (every parameter replaced by `value`, digits for numeric ones)."""

    def fill(match: re.Match[str]) -> str:
        return "1" if match.group(2) in ("int", "float") else value

    return _PARAM.sub(fill, path)


def operations(service: str, document: dict[str, Any]) -> list[Operation]:
    """Every operation of one service's OpenAPI document."""
    found = []
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            found.append(Operation(
                service=service, method=method.upper(), path=path, operation_id=op.get("operationId"),
                tags=tuple(op.get("tags", ())), internal_flag=bool(op.get("x-internal", False)),
            ))
    return found


def is_public(op: Operation, config: GatewayConfig) -> bool:
    """Whether the gateway exposes an operation: under /v1 or the public page, not probes or debugging."""
    if op.internal_flag or set(op.tags) & set(config.internal.tags) or op.path in config.internal.paths:
        return False
    if op.path.startswith("/v1/"):
        return True
    return op.path == "/" and op.service == config.public_page.owner


def _streams(document: dict[str, Any], path: str, method: str) -> bool:
    responses = document["paths"][path][method.lower()].get("responses", {})
    return any("text/event-stream" in (r.get("content") or {}) for r in responses.values())


def route_table(documents: dict[str, dict[str, Any]], config: GatewayConfig) -> list[Route]:
    """Public routes of all services, one per path template; raises AmbiguousRoutes on overlaps."""
    routes: dict[tuple[str, str], Route] = {}
    for service in config.services:
        document = documents[service]
        for op in operations(service, document):
            if not is_public(op, config):
                continue
            route = routes.setdefault((service, op.path), Route(service=service, path=op.path))
            route.methods.append(op.method)
            if op.operation_id:
                route.operation_ids.append(op.operation_id)
            route.streaming = route.streaming or _streams(document, op.path, op.method)
    larger = {item.path: item.body for item in config.limits.larger_bodies}
    for route in routes.values():
        route.body = larger.pop(route.path, None)
    if larger:
        raise ValueError(f"limits.larger_bodies names paths no service defines: {sorted(larger)}")
    table = sorted(routes.values(), key=lambda r: (r.path, r.service))
    problems = ambiguities(table)
    if problems:
        raise AmbiguousRoutes("; ".join(problems))
    return table


def _segment_regex(segment: str) -> str:
    return template_regex(segment)


def _segments_overlap(a: str, b: str) -> bool:
    """Whether one concrete path segment could match both template segments."""
    if a == b:
        return True
    ra, rb = _segment_regex(a), _segment_regex(b)
    candidates = [sample_path(a), sample_path(b), sample_path(a, "1"), sample_path(b, "1")]
    if _PARAM.search(a) is None:
        candidates.append(a)
    if _PARAM.search(b) is None:
        candidates.append(b)
    return any(re.match(ra, c) and re.match(rb, c) for c in candidates)


def overlap(a: str, b: str) -> bool:
    """Whether two path templates can match the same request path."""
    if ":path}" in a or ":path}" in b:
        return bool(re.match(template_regex(a), sample_path(b)) or re.match(template_regex(b), sample_path(a)))
    left, right = a.split("/"), b.split("/")
    return len(left) == len(right) and all(_segments_overlap(x, y) for x, y in zip(left, right, strict=True))


def ambiguities(routes: Iterable[Route]) -> list[str]:
    """Pairs of routes owned by different services that one request path could match."""
    listed = list(routes)
    problems = []
    for i, first in enumerate(listed):
        for second in listed[i + 1:]:
            if first.service != second.service and overlap(first.path, second.path):
                problems.append(f"{first.path} ({first.service}) and {second.path} ({second.service}) overlap")
    return problems


def owner_of(path: str, routes: Iterable[Route]) -> Route | None:
    """The route a concrete request path belongs to (what nginx decides: exact match first, then patterns)."""
    listed = list(routes)
    for route in listed:
        if route.exact and route.path == path:
            return route
    for route in listed:
        if not route.exact and re.match(route.pattern, path):
            return route
    return None
