"""Fixtures of the resilience tests: registry, pledges and publisher running together on one database server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.kafka import committed_offsets, end_offsets
from ksbb_kit.reconcile import Difference, reconcile
from ksbb_kit.testing.service import free_port, running
from ksbb_kit.testing.waiting import eventually
from ksbb_notifier.bootstrap import create_app as create_notifier
from ksbb_notifier.settings import NotifierSettings
from ksbb_pledges.bootstrap import PledgesService, compose
from ksbb_pledges.settings import PledgesSettings
from ksbb_publisher.bootstrap import create_app as create_publisher
from ksbb_publisher.settings import PublisherSettings
from ksbb_registry.bootstrap import create_app as create_registry
from ksbb_registry.settings import RegistrySettings

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "deploy" / "local" / "infra"


def bearer(issuer: DevIssuer, role: Role, **claims: Any) -> dict[str, str]:
    """An Authorization header for a development token."""
    return {"authorization": f"Bearer {issuer.token(role, **claims)}"}


@dataclass
class OwnMongo:
    """A MongoDB-wire server of our own (h2 backend on files), started by the deploy launcher."""

    state_dir: Path
    port: int
    commit: str

    @property
    def url(self) -> str:
        """Its connection URL."""
        return f"mongodb://127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KSBB_INFRA_DIR": str(self.state_dir),
            "KSBB_MONGO_PORT": str(self.port),
            "KSBB_MONGO_BACKEND": "h2",
            "KSBB_MONGO_HEAP": "512m",
            "KSBB_MONGO_H2_COMMIT": self.commit,
        }

    def up(self) -> None:
        """Start it (on the same files after a crash); fails loudly when the launcher fails."""
        done = subprocess.run([str(INFRA), "up", "mongo"], env=self._env(), capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, f"infra up mongo failed:\n{done.stdout}\n{done.stderr}"

    def pid(self) -> int:
        """The server's process id as the launcher recorded it."""
        return int((self.state_dir / "run" / "mongo.pid").read_text().strip())

    def kill(self) -> None:
        """`kill -9` the server: no shutdown hook, nothing flushed."""
        os.kill(self.pid(), signal.SIGKILL)

    def down(self) -> None:
        """Stop it for good."""
        with contextlib.suppress(Exception):
            os.kill(self.pid(), signal.SIGTERM)


@pytest.fixture
def own_mongo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[OwnMongo]:
    """A started h2 server on a free port (commit mode from the test's `commit` parameter, default delay)."""
    server = OwnMongo(tmp_path / "infra", free_port(), getattr(request, "param", "delay"))
    server.up()
    yield server
    server.down()


@dataclass
class Platform:
    """Registry, pledges and publisher running in this event loop on one Kafka namespace and database server."""

    registry: httpx.AsyncClient
    pledges: httpx.AsyncClient
    publisher: httpx.AsyncClient
    pledges_service: PledgesService
    mongodb_url: str
    prefix: str
    issuer: DevIssuer
    pledges_mongodb_url: str | None = None
    #: The registry's anti-entropy jobs (needs, recipients), run on demand by the tests.
    registry_restatements: tuple[Any, ...] = ()
    kafka_bootstrap: str = ""

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        """The end offset of each partition of a (logical) topic now."""
        return await end_offsets(self.kafka_bootstrap, self.prefix + topic)

    async def group_reached(self, group: str, offsets: dict[TopicPartition, int]) -> bool:
        """Whether a (logical) consumer group committed at least these offsets."""
        committed = await committed_offsets(self.kafka_bootstrap, self.prefix + group)
        return all(committed.get(tp, -1) >= end for tp, end in offsets.items() if end > 0)

    @property
    def admin(self) -> dict[str, str]:
        """An administrator's headers."""
        return bearer(self.issuer, Role.ADMIN, subject="admin-1")

    async def differences(self) -> list[Difference]:
        """What `ksbb reconcile` reports for this namespace."""
        return await reconcile(self.mongodb_url, prefix=self.prefix, service_urls=self._service_urls())

    def _service_urls(self) -> dict[str, str]:
        return {"pledges": self.pledges_mongodb_url} if self.pledges_mongodb_url else {}

    async def reconcile_cli(self) -> tuple[int, str]:
        """Run the real `ksbb reconcile` command; its exit code and output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ksbb_kit.cli", "reconcile", "--prefix", self.prefix, "--mongodb", self.mongodb_url,
            *(f"--service-mongodb={service}={url}" for service, url in self._service_urls().items()),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        return int(process.returncode or 0), out.decode()

    async def seed_needs(self, count: int, quantity: int) -> list[str]:
        """An organisation, an active recipient and `count` open needs; waits until pledges knows them."""
        org = await self.registry.post("/v1/organisations", headers={**self.admin, "Idempotency-Key": "org-1"}, json={
            "name": "Lembaga Tahan Banting", "kind": "ngo", "area_codes": ["31.71"],
            "contact": {"name": "Sekretariat", "email": "sekretariat@tahan.example"},
        })
        assert org.status_code == 201, org.text
        org_id = org.json()["organisation_id"]
        staff = bearer(self.issuer, Role.FACILITATOR, org_id=org_id, subject="staff-1")
        created = await self.registry.post("/v1/recipients", headers={**staff, "Idempotency-Key": "rcp-1"}, json={
            "name": "RW 05 Gambir", "kind": "rw_rentan", "kelurahan_code": "31.71.01.1001", "rw": 5,
            "street_address": "Jl. Kenari No. 7", "organisation_id": org_id,
            "beneficiaries": {"households": 100, "people": 400, "children": 80, "elderly": 30, "disabled": 4},
            "contact": {"name": "Bapak Joko", "phone": "0812-5555-0101"},
        })
        assert created.status_code == 201, created.text
        recipient_id = created.json()["recipient_id"]
        for step in ("verify", "activate"):
            moved = await self.registry.post(f"/v1/recipients/{recipient_id}/{step}", headers=staff,
                                             json={"reason": "Survei lapangan"})
            assert moved.status_code == 200, moved.text
        need_ids = []
        for index in range(count):
            need = await self.registry.post(
                f"/v1/recipients/{recipient_id}/needs", headers={**staff, "Idempotency-Key": f"need-{index}"},
                json={"item": "sembako", "quantity": quantity, "priority": "high",
                      "needed_by": (date.today() + timedelta(days=20)).isoformat()})
            assert need.status_code == 201, need.text
            need_ids.append(need.json()["need_id"])

        async def ledgers_open() -> bool:
            for need_id in need_ids:
                if (await self.pledges.get(f"/v1/needs/{need_id}/ledger")).status_code != 200:
                    return False
            return True

        await eventually(ledgers_open, within=90, what="every need reaches the pledge ledger")
        return need_ids

    async def pledge(self, need_id: str, quantity: int, donor: str) -> httpx.Response:
        """A donor pledges to a need."""
        return await self.pledges.post("/v1/pledges", headers=bearer(self.issuer, Role.DONOR, subject=donor), json={
            "need_id": need_id, "quantity": quantity,
            "planned_date": (date.today() + timedelta(days=2)).isoformat()})

    async def figures(self, need_id: str) -> dict[str, Any]:
        """A need's figures as the owner, the registry and the publisher show them over their APIs."""
        ledger = (await self.pledges.get(f"/v1/needs/{need_id}/ledger")).json()
        registry = (await self.registry.get(f"/v1/needs/{need_id}", headers=self.admin)).json()["ledger"]
        public = (await self.publisher.get(f"/v1/public/needs/{need_id}")).json()["progress"]
        keys = ("requested", "committed", "in_transit", "delivered")
        return {
            "pledges": {k: ledger[k] for k in keys},
            "registry": {k: registry[k] for k in keys},
            "publisher": {k: public[k] for k in keys},
        }


@contextlib.asynccontextmanager
async def platform(
    kit_env: dict[str, Any],
    issuer: DevIssuer,
    *,
    pledges_mongodb_url: str | None = None,
    notifier: bool = False,
    **pledges_overrides: Any,
) -> AsyncIterator[Platform]:
    """Start the three services (pledges with `pledges_overrides`, e.g. the anti-entropy interval, and on its
    own database server when `pledges_mongodb_url` names one), and the notifier when asked (without it,
    `ksbb reconcile` skips the notifier's views)."""
    pledges_env = {**kit_env, **({"mongodb_url": pledges_mongodb_url} if pledges_mongodb_url else {})}
    pledges_service = compose(PledgesSettings(**pledges_env, **pledges_overrides))
    async with contextlib.AsyncExitStack() as stack:
        registry_app = create_registry(RegistrySettings(**kit_env))
        registry = await stack.enter_async_context(running(registry_app))
        pledges = await stack.enter_async_context(running(pledges_service.app))
        publisher = await stack.enter_async_context(running(create_publisher(PublisherSettings(**kit_env))))
        if notifier:
            await stack.enter_async_context(running(create_notifier(NotifierSettings(**kit_env))))
        yield Platform(registry, pledges, publisher, pledges_service, kit_env["mongodb_url"], kit_env["topic_prefix"],
                       issuer, pledges_mongodb_url, tuple(registry_app.state.restatements),
                       kit_env["kafka_bootstrap"])
