"""Shared context for `make run`'s demo data: service URLs, real dev tokens, ids passed between seeds."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.progress import ProgressReport
from ksbb_kit.testing.waiting import eventually


@dataclass
class DemoContext:
    """What each service's `demo.seed(ctx)` gets: where the services are and how to sign tokens."""

    urls: dict[str, str]
    issuer: DevIssuer
    state: dict[str, Any] = field(default_factory=dict)

    def token(self, role: Role | str, **claims: Any) -> str:
        """A real signed token for a role (org_id=, recipient_id=, subject=, name=)."""
        return self.issuer.token(role, **claims)

    def client(self, service: str, role: Role | str | None = None, **claims: Any) -> httpx.AsyncClient:
        """An HTTP client for one service, authenticated as a role when given."""
        headers = {"authorization": f"Bearer {self.token(role, **claims)}"} if role else {}
        return httpx.AsyncClient(base_url=self.urls[service], headers=headers, timeout=30)

    def progress(self, description: str, total: int | None, *, unit: str = "items") -> ProgressReport:
        """A started progress report for one seed step: a bar with rate and time left on a terminal, a line every
        few seconds otherwise. Use it in a `with` block and `advance(n)` as work is done."""
        report = ProgressReport(description, unit=unit, stream=sys.stdout, interval=5.0)
        report.start(total)
        return report

    async def eventually(
        self, check: Callable[[], Awaitable[Any]], *, timeout: float = 60.0, what: str = "condition"
    ) -> Any:
        """Poll until `check` returns something truthy (events take a moment to propagate); TimeoutError if not."""
        try:
            return await eventually(check, within=timeout, interval=0.3, what=f"demo: {what}")
        except AssertionError as exc:  # the seed scripts report a time-out, not a failed test
            raise TimeoutError(str(exc)) from None
