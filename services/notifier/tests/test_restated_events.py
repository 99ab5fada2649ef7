"""A registry restatement (anti-entropy, ADR 0005) keeps the replicas right but is no news to a webhook subscriber;
a replica holding a version the registry reused with other content, or a state it restated, is repaired."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_contracts.envelope import CloudEvent
from ksbb_contracts.events import NeedChanged, OrganisationUpdated, RecipientUpdated
from ksbb_kit.testing.factories import envelope, make_event
from ksbb_notifier.app.replicas import Replicas
from ksbb_notifier.handlers import build_router
from prometheus_client import REGISTRY

pytestmark = pytest.mark.unit


class RecordingFanOut:
    """The fan-out port: notes which events were fanned out."""

    def __init__(self) -> None:
        self.types: list[str] = []

    async def fan_out(self, envelope: CloudEvent) -> int:
        self.types.append(envelope.type)
        return 1


class MemoryReplicaStore:
    """The snapshot part of the replica store port, in memory, with the Mongo store's guards."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, dict[str, Any]]] = {"organisation": {}, "recipient": {}}

    async def _keep(self, kind: str, owner_id: str, fields: dict[str, Any], version: int) -> bool:
        held = self.snapshots[kind].get(owner_id)
        if held is not None and held["version"] >= version:
            return False
        self.snapshots[kind][owner_id] = {**(held or {}), **fields, "version": version}
        return True

    async def keep_organisation(self, organisation_id: str, fields: dict[str, Any], version: int) -> bool:
        return await self._keep("organisation", organisation_id, fields, version)

    async def keep_recipient(self, recipient_id: str, fields: dict[str, Any], version: int) -> bool:
        return await self._keep("recipient", recipient_id, fields, version)

    async def snapshot_held(self, kind: str, owner_id: str) -> dict[str, Any] | None:
        held = self.snapshots[kind].get(owner_id)
        return None if held is None else {k: held[k] for k in ("version", "state_digest") if k in held}

    async def replace_snapshot(
        self, kind: str, owner_id: str, held: dict[str, Any] | None, fields: dict[str, Any]
    ) -> bool:
        assert await self.snapshot_held(kind, owner_id) == held, "the test runs one writer"
        self.snapshots[kind][owner_id] = {**self.snapshots[kind].get(owner_id, {}), **fields}
        return True


def repairs(view: str, reason: str) -> float:
    """`ksbb_view_repairs_total` of this process."""
    return REGISTRY.get_sample_value("ksbb_view_repairs_total", {"view": view, "reason": reason}) or 0.0


def notifier() -> tuple[Any, RecordingFanOut, MemoryReplicaStore]:
    fan_out, store = RecordingFanOut(), MemoryReplicaStore()
    router = build_router(replicas=Replicas(store), deliveries=fan_out, mailer=None)  # type: ignore[arg-type]
    return router, fan_out, store


@pytest.mark.parametrize("restated", [False, True])
async def test_a_restated_need_recipient_or_organisation_updates_the_replica_but_sends_no_webhook(
    restated: bool,
) -> None:
    router, fan_out, store = notifier()
    events = (
        make_event(NeedChanged, restated=restated),
        make_event(RecipientUpdated, restated=restated),
        make_event(OrganisationUpdated, restated=restated),
    )
    for event in events:
        await router.handlers[event.event_type](event, envelope(event))
    assert len(store.snapshots["recipient"]) == 1, "the recipient replica is kept either way"
    assert len(store.snapshots["organisation"]) == 1, "the organisation replica is kept either way"
    expected = [NeedChanged.event_type, RecipientUpdated.event_type, OrganisationUpdated.event_type]
    assert fan_out.types == ([] if restated else expected)


@pytest.mark.parametrize("kind", ["organisation", "recipient"])
async def test_a_reused_version_with_other_content_or_a_restated_older_state_repairs_the_replica(kind: str) -> None:
    router, fan_out, store = notifier()
    event_type = OrganisationUpdated if kind == "organisation" else RecipientUpdated

    async def deliver(version: int, name: str, *, restated: bool = False) -> None:
        event = make_event(event_type, restated=restated, **{kind: {"version": version, "name": name}})
        await router.handlers[event.event_type](event, envelope(event))

    def held() -> tuple[int, str]:
        [replica] = store.snapshots[kind].values()
        return replica["version"], replica["name"]

    view = f"notifier.{kind}s"
    same_before, restated_before = repairs(view, "same_version_other_figures"), repairs(view, "restated")
    await deliver(3, "Nama lama")
    await deliver(3, "Nama lama")  # a redelivery changes nothing
    assert held() == (3, "Nama lama") and repairs(view, "same_version_other_figures") == same_before
    await deliver(2, "Lebih tua")  # an older change is ignored
    assert held() == (3, "Nama lama")
    await deliver(3, "Nama baru")  # the registry reused version 3 after losing writes
    assert held() == (3, "Nama baru")
    assert repairs(view, "same_version_other_figures") == same_before + 1
    await deliver(2, "Yang benar", restated=True)  # the view is ahead of the registry: its restatement wins
    assert held() == (2, "Yang benar")
    assert repairs(view, "restated") == restated_before + 1
    await deliver(2, "Yang benar", restated=True)  # the same state again is no repair
    assert repairs(view, "restated") == restated_before + 1
    assert len(fan_out.types) == 4, "only the four changes (not the restatements) reach webhook subscribers"
