"""Fixtures of the portal tests: one platform (services, portal, nginx gateway) per test session on the shared
Kafka and MongoDB in its own namespace, the run's Keycloak and Mailpit, Chromium, and demo data per test."""

from __future__ import annotations

import secrets
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ksbb_kit.auth import DevIssuer
from ksbb_kit.identity import KeycloakAdmin
from ksbb_kit.testing.identity import IdentityInfra, identity_infra, mailpit, require_chromium
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.plugin import drop_namespace
from ksbb_kit.testing.waiting import eventually

sys.path.insert(0, str(Path(__file__).resolve().parent))

from portal_testing import ARTIFACTS, AXE, Account, Browser, Stack, chromium, make_account, running_stack

__all__ = ["identity_infra", "mailpit"]
GAMBIR = "31.71.01.1001"


@pytest.fixture(scope="session")
async def portal_env(
    infra: Infra, dev_issuer: DevIssuer, identity_infra: IdentityInfra
) -> AsyncIterator[dict[str, Any]]:
    """Settings of this session's services and portal: their own topics and databases, Keycloak as issuer."""
    prefix = f"tportal{uuid.uuid4().hex[:8]}."
    yield {
        "env": "test", "kafka_bootstrap": infra.kafka_bootstrap, "mongodb_url": infra.mongodb_url,
        "topic_prefix": prefix, "oidc_issuer": identity_infra.issuer, "jwks_url": str(dev_issuer.jwks_path),
        "jwt_issuer": dev_issuer.issuer, "jwt_audience": dev_issuer.audience, "outbox_sweep_seconds": 0.5,
        "handler_backoff_seconds": 0.05, "topic_partitions": 2, "sweep_interval_seconds": 3600,
    }
    await drop_namespace(infra, prefix)


@pytest.fixture(scope="session")
async def keycloak_admin(identity_infra: IdentityInfra) -> AsyncIterator[KeycloakAdmin]:
    """The realm's onboarding client (user management only)."""
    async with KeycloakAdmin(identity_infra.issuer, "ksbb-registry-admin", identity_infra.admin_client_secret) as admin:
        yield admin


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, once per session."""
    require_chromium()
    if not AXE.exists():
        pytest.fail(f"{AXE} not found: run `npm ci` in tests/browser (make browser-deps)", pytrace=False)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # this run's screenshots only
    async with chromium() as started:
        yield started


class World:
    """Demo data made through the API (development tokens) for the portal's journeys."""

    def __init__(self, stack: Stack, issuer: DevIssuer) -> None:
        self.stack = stack
        self.issuer = issuer
        self.org_id = ""
        self.used_rw: set[int] = set()

    def client(self, role: str, **claims: Any) -> httpx.AsyncClient:
        """An API client through the gateway with a development token."""
        token = self.issuer.token(role, **claims)
        return httpx.AsyncClient(base_url=self.stack.url, timeout=20, headers={"Authorization": f"Bearer {token}"})

    async def organisation(self) -> str:
        """A facilitator organisation."""
        async with self.client("admin", subject="portal-test-admin") as admin:
            response = await admin.post("/v1/organisations", json={
                "name": f"Yayasan Uji {secrets.token_hex(3)}", "kind": "ngo", "area_codes": ["31.71"],
                "contact": {"name": "Sekretariat", "email": "sekretariat@yayasan-uji.example"},
            })
            assert response.status_code == 201, response.text
            return str(response.json()["organisation_id"])

    async def recipient(
        self, *, status: str = "active", name: str | None = None, rw: int | None = None
    ) -> dict[str, Any]:
        """A recipient of the organisation, taken to a status (registered, verified or active)."""
        while rw is None or rw in self.used_rw:  # the registry refuses two units for one RW of a kelurahan
            rw = secrets.randbelow(99) + 1
        self.used_rw.add(rw)
        async with self.client("facilitator", org_id=self.org_id, subject="portal-test-staff") as staff:
            response = await staff.post("/v1/recipients", json={
                "name": name or f"RW {rw} Gambir Uji", "kind": "rw_rentan", "organisation_id": self.org_id,
                "kelurahan_code": GAMBIR, "rw": rw, "street_address": f"Jl. Kenari No. {rw}",
                "beneficiaries": {"households": 80, "people": 320, "children": 90, "elderly": 30, "disabled": 4},
                "contact": {"name": "Ibu Sari", "phone": "081234567890"},
            })
            assert response.status_code == 201, response.text
            recipient = dict(response.json())
            steps = {"registered": [], "verified": ["verify"], "active": ["verify", "activate"]}[status]
            for step in steps:
                moved = await staff.post(f"/v1/recipients/{recipient['recipient_id']}/{step}",
                                         json={"reason": "Survei lapangan"})
                assert moved.status_code == 200, moved.text
        return recipient

    async def need(self, recipient_id: str, quantity: int = 40) -> str:
        """An open sembako need, visible to the public page and known to the pledges ledger."""
        async with self.client("facilitator", org_id=self.org_id, subject="portal-test-staff") as staff:
            response = await staff.post(f"/v1/recipients/{recipient_id}/needs", json={
                "item": "sembako", "quantity": quantity, "priority": "high",
                "needed_by": (date.today() + timedelta(days=20)).isoformat(),
            })
            assert response.status_code == 201, response.text
            need_id = str(response.json()["need_id"])
        async with httpx.AsyncClient(base_url=self.stack.url, timeout=10) as public:

            async def visible() -> bool:
                shown = await public.get(f"/v1/public/needs/{need_id}")
                ledger = await public.get(f"/v1/needs/{need_id}/ledger")
                return shown.status_code == 200 and ledger.status_code == 200

            await eventually(visible, within=60, interval=0.3, what=f"need {need_id} published and in the ledger")
        return need_id

    async def pledge(self, need_id: str, quantity: int, *, until: str = "pledged") -> str:
        """A donor's pledge (development token), taken to `confirmed` or `dispatched` if asked."""
        donor = f"portal-test-donor-{secrets.token_hex(3)}"
        async with self.client("donor", subject=donor) as giver:

            async def placed() -> httpx.Response | None:
                response = await giver.post("/v1/pledges", json={
                    "need_id": need_id, "quantity": quantity, "mode": "own_delivery",
                    "planned_date": (date.today() + timedelta(days=2)).isoformat(),
                }, headers={"Idempotency-Key": f"{donor}-1"})
                # The ledger learns the recipient is active from an event: retry until it has.
                return response if response.status_code == 201 else None

            created = await eventually(placed, within=60, interval=0.5, what="pledge accepted")
            pledge_id = str(created.json()["pledge_id"])
            if until in ("confirmed", "dispatched"):
                async with self.client("facilitator", org_id=self.org_id, subject="portal-test-staff") as staff:
                    confirmed = await staff.post(f"/v1/pledges/{pledge_id}/confirm")
                    assert confirmed.status_code == 200, confirmed.text
            if until == "dispatched":
                dispatched = await giver.post(f"/v1/pledges/{pledge_id}/dispatch")
                assert dispatched.status_code == 200, dispatched.text
        return pledge_id


@pytest.fixture(scope="session")
async def stack(portal_env: dict[str, Any], identity_infra: IdentityInfra) -> AsyncIterator[Stack]:
    """The platform with the portal behind one gateway, for the whole session."""
    async with running_stack(portal_env, identity_infra) as running:
        yield running


@pytest.fixture(scope="session")
async def world(stack: Stack, dev_issuer: DevIssuer, keycloak_admin: KeycloakAdmin) -> AsyncIterator[World]:
    """This session's organisation, its recipient unit with an account, and one account per role."""
    made = World(stack, dev_issuer)
    made.org_id = await made.organisation()
    unit = await made.recipient(status="active")
    stack.data["unit"] = unit
    accounts: list[Account] = [
        await make_account(keycloak_admin, "facilitator", org_id=made.org_id),
        await make_account(keycloak_admin, "recipient", recipient_id=unit["recipient_id"]),
        await make_account(keycloak_admin, "admin"),
        await make_account(keycloak_admin, "donor"),
    ]
    stack.accounts = {account.role: account for account in accounts}
    try:
        yield made
    finally:
        for account in accounts:
            try:
                await keycloak_admin.delete_user(account.user_id)
            except Exception as exc:  # a leftover test account harms nothing; say so and go on
                print(f"could not delete test account {account.email}: {exc}")
