"""Fuzzing in CI: Schemathesis generates requests from each service's own OpenAPI document and checks every answer
against it — no 5xx, no undocumented status, content type, body or header, 405 with `Allow` for other methods.

Each service runs for real (its composition root, the real broker and database, a throw-away test namespace) and
is called with realistic bearer tokens of every role from the development issuer, plus no token at all. The
examples are derandomized and bounded (a few per operation and generation mode: a few hundred requests in all),
so the stage takes minutes, fails the same way on every run, and a failure names the reproducing request.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.settings import KitSettings
from ksbb_kit.testing.service import served
from schemathesis import GenerationMode, checks
from schemathesis.core.failures import FailureGroup

pytestmark = pytest.mark.integration
SERVICES = ("registry", "pledges", "notifier", "publisher")
#: Examples per operation and generation mode (valid data; data violating the document).
EXAMPLES = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.unsupported_method,
]


def composition_root(service: str) -> tuple[Callable[..., FastAPI], type[KitSettings]]:
    """The service's `bootstrap.create_app` and its settings class."""
    create_app = importlib.import_module(f"ksbb_{service}.bootstrap").create_app
    module = importlib.import_module(f"ksbb_{service}.settings")
    [settings_class] = [value for value in vars(module).values()
                        if isinstance(value, type) and issubclass(value, KitSettings) and value.service_name == service]
    return create_app, settings_class


def tokens_of_every_role(issuer: DevIssuer) -> dict[str, str | None]:
    """A caller per role, as the identity provider would issue them, and an anonymous one."""
    return {
        "anonymous": None,
        "admin": issuer.token(Role.ADMIN, subject="fuzz-admin"),
        "facilitator": issuer.token(Role.FACILITATOR, subject="fuzz-facilitator", org_id="org_fuzz"),
        "recipient": issuer.token(Role.RECIPIENT, subject="fuzz-recipient", recipient_id="rcp_fuzz"),
        "donor": issuer.token(Role.DONOR, subject="fuzz-donor"),
    }


def fuzz(document: dict[str, Any], base_url: str, tokens: dict[str, str | None]) -> tuple[int, list[str]]:
    """Call every operation with generated requests; returns (requests sent, findings)."""
    schema = schemathesis.openapi.from_dict(document)
    findings: dict[tuple[str, str], str] = {}
    sent = 0
    for result in schema.get_all_operations():
        for mode, examples in EXAMPLES.items():
            sent += fuzz_operation(result.ok(), mode, examples, base_url, tokens, findings)
    return sent, list(findings.values())


def fuzz_operation(
    operation: Any, mode: GenerationMode, examples: int, base_url: str, tokens: dict[str, str | None],
    findings: dict[tuple[str, str], str],
) -> int:
    """Send `examples` generated requests to one operation, recording each distinct failure once."""
    sent = 0

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(generation_mode=mode), role=st.sampled_from(sorted(tokens)))
    def call(case: Any, role: str) -> None:
        nonlocal sent
        token = tokens[role]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        sent += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as failures:
            for failure in failures.exceptions:
                title = str(getattr(failure, "title", type(failure).__name__))
                findings.setdefault((operation.label, title),
                                    f"{operation.label} as {role} ({mode.value}): {str(failures)[:1500]}")

    try:
        call()
    except Unsatisfiable:
        pass  # nothing in this operation can be made invalid (no parameters, no body)
    return sent


@pytest.mark.timeout(600)
@pytest.mark.parametrize("service", SERVICES)
async def test_every_operation_answers_as_its_document_says_and_never_with_a_server_error(
    service: str, kit_env: dict[str, Any], dev_issuer: DevIssuer
) -> None:
    create_app, settings_class = composition_root(service)
    app = create_app(settings_class(**{**kit_env, "sweep_interval_seconds": 3600}))
    async with served(app) as base_url:
        # Requests go out from a worker thread: the service answers on this test's event loop meanwhile.
        sent, findings = await asyncio.to_thread(fuzz, app.openapi(), base_url, tokens_of_every_role(dev_issuer))
    assert sent >= len(app.openapi()["paths"]), "every documented path was called"
    assert findings == [], f"{len(findings)} findings in {sent} requests:\n\n" + "\n\n".join(findings)
