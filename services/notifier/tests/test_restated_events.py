"""A registry restatement (anti-entropy, ADR 0005) keeps the replicas right but is no news to a webhook subscriber."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_contracts.envelope import CloudEvent
from ksbb_contracts.events import NeedChanged, RecipientUpdated
from ksbb_kit.testing.factories import envelope, make_event
from ksbb_notifier.app.replicas import Replicas
from ksbb_notifier.handlers import build_router

pytestmark = pytest.mark.unit


class RecordingFanOut:
    """The fan-out port: notes which events were fanned out."""

    def __init__(self) -> None:
        self.types: list[str] = []

    async def fan_out(self, envelope: CloudEvent) -> int:
        self.types.append(envelope.type)
        return 1


class RecordingReplicaStore:
    """The replica store port: notes the recipient snapshots kept (newest version wins in the real one)."""

    def __init__(self) -> None:
        self.recipients: dict[str, tuple[dict[str, Any], int]] = {}

    async def keep_recipient(self, recipient_id: str, fields: dict[str, Any], version: int) -> None:
        self.recipients[recipient_id] = (fields, version)


@pytest.mark.parametrize("restated", [False, True])
async def test_a_restated_need_or_recipient_updates_the_replica_but_sends_no_webhook(restated: bool) -> None:
    fan_out, store = RecordingFanOut(), RecordingReplicaStore()
    router = build_router(replicas=Replicas(store), deliveries=fan_out, mailer=None)  # type: ignore[arg-type]
    for event in (make_event(NeedChanged, restated=restated), make_event(RecipientUpdated, restated=restated)):
        await router.handlers[event.event_type](event, envelope(event))
    assert len(store.recipients) == 1, "the recipient replica is kept either way"
    assert fan_out.types == ([] if restated else [NeedChanged.event_type, RecipientUpdated.event_type])
