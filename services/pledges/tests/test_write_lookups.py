"""Integration: every write the pledges service sends finds its documents by `_id` or a unique index.

The stand-in database server (and any server without a fitting index) scans the whole collection for a
write whose filter no index answers; on the pledge path that scan grows with history (every copy, every
ledger). A watched client records each write's filter through a whole pledge lifecycle; a filter passes when
it is `_id` alone, or exactly the fields of a unique index with plain values (an operator such as
`{"$lte": n}` is not looked up through an index on the stand-in).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from ksbb_kit.auth import DevIssuer
from ksbb_kit.clock import ManualClock
from ksbb_kit.outbox import MARKERS
from ksbb_kit.testing.infra import Infra
from ksbb_kit.testing.plugin import running
from ksbb_pledges.bootstrap import compose
from pymongo import monitoring

from .conftest import START, Service, settings_for

pytestmark = pytest.mark.integration

#: Collections of pending work only (a marker lives while its document's events are unpublished): small by
#: design, so a filter there may name other fields.
PENDING_WORK = {MARKERS}


class WriteFilters(monitoring.CommandListener):
    """The filters of the writes sent to one database, as (collection, filter)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Record the filter of every update, delete and find-and-modify statement."""
        if event.database_name != self.database:
            return
        command, collection = event.command, str(event.command.get(event.command_name))
        if event.command_name == "update":
            self.seen += [(collection, dict(u["q"])) for u in command.get("updates", [])]
        elif event.command_name == "delete":
            self.seen += [(collection, dict(d["q"])) for d in command.get("deletes", [])]
        elif event.command_name == "findAndModify":
            self.seen.append((collection, dict(command.get("query", {}))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


@pytest_asyncio.fixture(scope="module")
async def watched(infra: Infra, dev_issuer: DevIssuer, module_namespace: str) -> AsyncIterator[tuple[Service, Any]]:
    """A running pledges service whose database client reports every write it sends."""
    settings = settings_for(infra, dev_issuer, module_namespace)
    filters = WriteFilters(f"{module_namespace.replace('.', '_')}ksbb_pledges")
    # Listeners registered globally reach the clients created afterwards: the service's own.
    monitoring.register(filters)
    clock = ManualClock(START)
    parts = compose(settings, clock=clock)
    async with running(parts.app) as client:
        service = Service(client=client, parts=parts, settings=settings, clock=clock, issuer=dev_issuer,
                          infra=infra, namespace=module_namespace)
        yield service, filters
    filters.database = ""  # stop recording: the registration outlives the module


async def unique_indexes(service: Service, collection: str) -> set[tuple[str, ...]]:
    """The field sets of a collection's unique indexes (and of `_id`)."""
    found = {("_id",)}
    async for index in await service.parts.runtime.db[collection].list_indexes():
        if index.get("unique"):
            found.add(tuple(sorted(index["key"])))
    return found


def plain(value: Any) -> bool:
    """Whether a filter value is a value (not an operator document) an index can be looked up with."""
    return not (isinstance(value, dict) and any(str(k).startswith("$") for k in value))


async def test_every_write_of_a_pledge_lifecycle_is_answered_by_id_or_a_unique_index(watched: Any) -> None:
    service, filters = watched
    assert service.parts.runtime.db.name == filters.database
    need_id = await service.open_need(quantity=30)
    donor, recipient = service.auth("donor", subject="donor-1"), service.auth("recipient", recipient_id="rcp_a")
    filters.seen.clear()

    delivered = (await service.pledge(need_id, 4)).json()["pledge_id"]
    cancelled = (await service.pledge(need_id, 3, key=f"lookups-{uuid.uuid4().hex[:6]}")).json()["pledge_id"]
    assert (await service.client.post(f"/v1/pledges/{delivered}/confirm", headers=recipient)).status_code == 200
    assert (await service.client.post(f"/v1/pledges/{delivered}/dispatch", headers=donor)).status_code == 200
    receipt = {"received_quantity": 4, "proof_ref": "foto-1"}
    response = await service.client.post(f"/v1/pledges/{delivered}/deliver", headers=recipient, json=receipt)
    assert response.status_code == 200, response.text
    assert (await service.client.post(f"/v1/pledges/{cancelled}/cancel", headers=donor)).status_code == 200
    await service.parts.runtime.relay.drain()

    written = {collection for collection, _ in filters.seen}
    assert {"ledgers", "pledges"} <= written, f"the lifecycle's writes were not seen: {sorted(written)}"
    scans = []
    for collection, query in filters.seen:
        if collection in PENDING_WORK:
            continue
        fields = tuple(sorted(query))
        by_id = fields == ("_id",)
        by_unique = fields in await unique_indexes(service, collection) and all(map(plain, query.values()))
        if not (by_id or by_unique):
            scans.append((collection, query))
    assert not scans, f"writes no unique index answers (a scan of the collection on the stand-in): {scans}"
