"""Shared fixtures of the pledges tests: one running service per module, tokens, registry event builders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ksbb_contracts import Event
from ksbb_contracts.events.registry import Beneficiaries, NeedOpened, NeedPublic, RecipientPublic
from ksbb_contracts.vocab import Item, NeedStatus, Priority, RecipientKind, RecipientStatus
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.kafka import publish_events
from ksbb_kit.testing.plugin import running
from ksbb_kit.testing.waiting import eventually
from ksbb_pledges.bootstrap import PledgesService, compose
from ksbb_pledges.settings import PledgesSettings

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def need_snapshot(
    need_id: str,
    *,
    recipient_id: str = "rcp_a",
    organisation_id: str = "org_a",
    quantity: int = 10,
    status: NeedStatus = NeedStatus.OPEN,
    version: int = 1,
    item: Item = Item.SEMBAKO,
    priority: Priority = Priority.MEDIUM,
    kelurahan_code: str = "31.71.01.1001",
    needed_by: date | None = None,
) -> NeedPublic:
    """A need as the registry would publish it."""
    return NeedPublic(
        need_id=need_id,
        recipient_id=recipient_id,
        organisation_id=organisation_id,
        kelurahan_code=kelurahan_code,
        item=item,
        quantity=quantity,
        unit="paket",
        priority=priority,
        needed_by=needed_by or date(2026, 3, 20),
        status=status,
        version=version,
    )


def recipient_snapshot(
    recipient_id: str,
    *,
    organisation_id: str = "org_a",
    status: RecipientStatus = RecipientStatus.ACTIVE,
    version: int = 1,
    households: int = 10,
) -> RecipientPublic:
    """A recipient as the registry would publish it."""
    return RecipientPublic(
        recipient_id=recipient_id,
        name=f"Panti {recipient_id}",
        kind=RecipientKind.PANTI_ASUHAN,
        organisation_id=organisation_id,
        kelurahan_code="31.71.01.1001",
        beneficiaries=Beneficiaries(households=households, people=households * 4),
        status=status,
        version=version,
    )


@dataclass
class Service:
    """One running pledges service in its own namespace, with helpers to drive it."""

    client: httpx.AsyncClient
    parts: PledgesService
    settings: PledgesSettings
    clock: ManualClock
    issuer: DevIssuer
    infra: Infra
    namespace: str
    tokens: dict[str, str] = field(default_factory=dict)
    need = staticmethod(need_snapshot)
    recipient = staticmethod(recipient_snapshot)

    def auth(self, role: str, **claims: Any) -> dict[str, str]:
        """Authorization header for a role."""
        return {"authorization": f"Bearer {self.issuer.token(role, **claims)}"}

    async def publish(self, *events: Event) -> None:
        """Inject events as the registry would."""
        await publish_events(self.infra.kafka_bootstrap, self.namespace, list(events))

    async def open_need(self, need_id: str | None = None, **kwargs: Any) -> str:
        """Open a need through a registry event and wait until the ledger knows it."""
        need_id = need_id or f"ned_{uuid.uuid4().hex[:10]}"
        await self.publish(NeedOpened(need=need_snapshot(need_id, **kwargs), occurred_at=self.clock.now()))
        await eventually(lambda: self.ledger_or_none(need_id), what=f"ledger of {need_id}")
        return need_id

    async def ledger_or_none(self, need_id: str) -> dict[str, Any] | None:
        """The public ledger of a need, or None while unknown."""
        response = await self.client.get(f"/v1/needs/{need_id}/ledger")
        return response.json() if response.status_code == 200 else None

    async def pledge(
        self,
        need_id: str,
        quantity: int = 1,
        *,
        donor: str = "donor-1",
        mode: str = "own_delivery",
        key: str | None = None,
        planned: date | None = None,
    ) -> httpx.Response:
        """POST a pledge as a donor."""
        headers = self.auth("donor", subject=donor)
        if key:
            headers["Idempotency-Key"] = key
        body = {
            "need_id": need_id,
            "quantity": quantity,
            "mode": mode,
            "planned_date": (planned or self.clock.now().date() + timedelta(days=2)).isoformat(),
        }
        return await self.client.post("/v1/pledges", json=body, headers=headers)

    @property
    def app(self) -> Any:
        """The service's FastAPI application."""
        return self.parts.app


def settings_for(infra: Infra, issuer: DevIssuer, namespace: str) -> PledgesSettings:
    """Settings of a service under test in a namespace."""
    return PledgesSettings(
        env="test",
        kafka_bootstrap=infra.kafka_bootstrap,
        mongodb_url=infra.mongodb_url,
        topic_prefix=namespace,
        jwks_url=str(issuer.jwks_path),
        jwt_issuer=issuer.issuer,
        jwt_audience=issuer.audience,
        outbox_sweep_seconds=0.5,
        handler_backoff_seconds=0.05,
        sweep_interval_seconds=3600,
    )


@pytest.fixture(scope="module")
def module_namespace() -> str:
    """One namespace (topics, group, database) for every test of a module."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest_asyncio.fixture(scope="module")
async def service(infra: Infra, dev_issuer: DevIssuer, module_namespace: str) -> AsyncIterator[Service]:
    """A running pledges service shared by a module's tests (a ManualClock drives time)."""
    clock = ManualClock(START)
    settings = settings_for(infra, dev_issuer, module_namespace)
    parts = compose(settings, clock=clock)
    async with running(parts.app) as client:
        yield Service(
            client=client,
            parts=parts,
            settings=settings,
            clock=clock,
            issuer=dev_issuer,
            infra=infra,
            namespace=module_namespace,
        )
