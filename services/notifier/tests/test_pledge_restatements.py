"""A pledge restatement (`ksbb.pledge.restated.v1`, the pledges service's anti-entropy, ADR 0005) is no news to
anyone the notifier informs: on the real broker it is read, sends no webhook and no e-mail, is not dead-lettered,
and the records after it are handled as usual."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ksbb_contracts.events.pledges import PledgeDispatched, PledgeRestated
from ksbb_contracts.topics import ignores_event_type
from ksbb_kit.clock import ManualClock
from ksbb_kit.testing import factories
from ksbb_kit.testing.kafka import publish_events
from prometheus_client import REGISTRY

pytestmark = pytest.mark.integration


def ignored() -> float:
    """Restatements this process's consumers read and skipped on purpose (not dead-lettered)."""
    labels = {"event_type": PledgeRestated.event_type, "outcome": "ignored"}
    return REGISTRY.get_sample_value("ksbb_event_handler_outcomes_total", labels) or 0.0


async def test_a_restated_pledge_sends_no_webhook_and_no_email_and_later_records_are_handled(
    infra: Any, dev_issuer: Any, h: Any, receiver: Any
) -> None:
    assert ignores_event_type("notifier", PledgeRestated.event_type), "the contracts say the notifier skips it"
    settings = h.base_settings(infra, dev_issuer, h.new_namespace())
    org = "org_restated"
    async with h.start_notifier(settings, ManualClock(datetime.now(UTC).replace(microsecond=0))) as app:
        admin = h.auth(dev_issuer, "admin")
        for headers, path in ((h.auth(dev_issuer, "facilitator", org_id=org), "/org"), (admin, "/admin")):
            created = await app.client.post("/v1/webhooks/endpoints", headers=headers,
                                            json={"url": receiver.url(path)})
            assert created.status_code == 201, created.text
        pledge = h.pledge_public("plg_restated", org, "rcp_restated", status="confirmed", version=2)
        now = datetime.now(UTC)
        restated = factories.make_event(PledgeRestated, pledge=pledge, occurred_at=now)
        # The change after it (no e-mail for a dispatch): handled, fanned out to both endpoints.
        dispatched = factories.make_event(
            PledgeDispatched, pledge=pledge.model_copy(update={"status": "dispatched", "version": 3}), occurred_at=now)
        ignored_before = ignored()
        restated_envelope, marker = await publish_events(
            infra.kafka_bootstrap, settings.topic_prefix, [restated, dispatched])

        async def marker_fanned_out() -> bool:
            return await app.db.deliveries.count_documents({"message_id": marker.id}) == 2

        await h.eventually(marker_fanned_out, what="the change after the restatement fanned out")
        await app.notifier.dispatcher.run_due()
        delivered = [r.headers["webhook-id"] for path in ("/org", "/admin") for r in receiver.at(path)]
        assert delivered == [marker.id, marker.id], "only the real change reaches the subscribers"
        assert await app.db.messages.find_one({"_id": restated_envelope.id}) is None
        assert await app.db.deliveries.count_documents({"message_id": restated_envelope.id}) == 0
        assert await app.db.emails.count_documents({}) == 0, "a restatement mails nobody"
        assert ignored() == ignored_before + 1, "read and skipped on purpose, not dead-lettered"
