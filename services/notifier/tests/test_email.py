"""E-mails to donors, recipient contacts and facilitators arrive at a real SMTP server, in both languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ksbb_contracts.events.pledges import (
    DonorContactRecorded,
    PledgeCancelled,
    PledgeConfirmed,
    PledgeDelivered,
    PledgeExpired,
    PledgeExpiring,
)
from ksbb_contracts.events.registry import OrganisationContactRecorded, RecipientContactRecorded
from ksbb_kit.clock import ManualClock
from ksbb_kit.kafka import KafkaRecordPublisher
from ksbb_kit.testing.kafka import publish_events

pytestmark = pytest.mark.integration


def parts(message: Any) -> dict[str, str]:
    """Content type → decoded text of a multipart/alternative message."""
    assert message.get_content_type() == "multipart/alternative"
    return {p.get_content_type(): p.get_content() for p in message.iter_parts()}


async def test_pledge_emails_reach_donor_recipient_and_facilitator(
    infra: Any,
    dev_issuer: Any,
    h: Any,
    smtp: Any,
) -> None:
    sink, port = smtp
    settings = h.base_settings(infra, dev_issuer, h.new_namespace(), smtp_port=port)
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    org, recipient, donor = "org_mail", "rcp_mail", "dnr_mail"
    async with h.start_notifier(settings, clock) as app:
        store, mailer = app.db, app.notifier.mailer
        await publish_events(
            infra.kafka_bootstrap,
            settings.topic_prefix,
            [
                h.recipient_registered(recipient, org, name="Panti Asuhan Kasih Ibu"),
                DonorContactRecorded(donor_id=donor, name="Budi Santoso", email="budi@example.org"),
                RecipientContactRecorded(
                    recipient_id=recipient,
                    organisation_id=org,
                    contact_name="Ibu Siti",
                    phone="0812-3456-7890",
                    email="siti@example.org",
                    street_address="Jl. Merdeka 1, Gambir",
                ),
                OrganisationContactRecorded(organisation_id=org, email="ngo@example.org", contact_name="Pak Andi"),
            ],
        )

        async def replicated() -> bool:
            return await store.contacts.count_documents({}) == 3 and await store.recipients.count_documents({}) == 1

        await h.eventually(replicated, what="contacts and recipient replicated")
        now = datetime.now(UTC)
        snapshot = h.pledge_public("plg_mail", org, recipient, donor=donor)
        pledge_events = [
            h.pledge_created("plg_mail", org, recipient, donor=donor),
            PledgeConfirmed(pledge=snapshot, occurred_at=now),
            PledgeExpiring(pledge=snapshot, occurred_at=now, expires_at=now + timedelta(hours=12)),
            PledgeExpired(pledge=snapshot, occurred_at=now, reason="not_dispatched"),
            PledgeDelivered(pledge=snapshot, occurred_at=now, received_quantity=9),
            PledgeCancelled(pledge=snapshot, occurred_at=now, reason="donor_cancelled"),
        ]
        envelopes = await publish_events(infra.kafka_bootstrap, settings.topic_prefix, pledge_events)

        async def queued() -> bool:
            return await store.emails.count_documents({}) == 9

        await h.eventually(queued, what="nine e-mails queued")
        assert await mailer.run_due() == 9
        donor_mail = sink.to("budi@example.org")
        assert len(donor_mail) == 5
        subjects = " | ".join(m["Subject"] for m in donor_mail)
        for words in ("Pledge received", "Pledge confirmed", "expiring", "Pledge expired", "Thank you"):
            assert words in subjects
        [received] = [m for m in donor_mail if "Pledge received" in m["Subject"]]
        body = parts(received)
        assert "Ibu Siti" in body["text/plain"] and "0812-3456-7890" in body["text/plain"]
        assert "2×24 jam" in body["text/plain"] and "2×24 hours" in body["text/plain"]
        assert body["text/plain"].index("Terima kasih") < body["text/plain"].index("Thank you")
        assert "Panti Asuhan Kasih Ibu" in received["Subject"]
        assert "<p>" in body["text/html"] and "Jl. Merdeka 1, Gambir" in body["text/html"]
        assert {m["Subject"].split(" / ")[0] for m in sink.to("siti@example.org")} == {
            "Komitmen bantuan baru",
            "Komitmen dibatalkan",
        }
        assert len(sink.to("ngo@example.org")) == 2
        thanks = next(m for m in donor_mail if "Thank you" in m["Subject"])
        assert "9" in parts(thanks)["text/plain"]

        # A redelivered event queues nothing new.
        await publish_events(
            infra.kafka_bootstrap, settings.topic_prefix, [pledge_events[1]], event_ids=[envelopes[1].id]
        )
        marker = PledgeConfirmed(
            pledge=h.pledge_public("plg_marker", org, recipient, donor="dnr_unknown"), occurred_at=now
        )
        await publish_events(infra.kafka_bootstrap, settings.topic_prefix, [marker])

        async def marker_queued() -> bool:
            return await store.emails.count_documents({}) == 10

        await h.eventually(marker_queued)
        # The donor's contact is not known (yet): the e-mail waits on the retry schedule.
        await mailer.run_due()
        waiting = await store.emails.find_one({"to_id": "dnr_unknown"})
        assert waiting["status"] == "pending" and "ContactUnknown" in waiting["last_error"]
        assert waiting["next_attempt_at"] == clock.now() + timedelta(seconds=30)
        await publish_events(
            infra.kafka_bootstrap,
            settings.topic_prefix,
            [DonorContactRecorded(donor_id="dnr_unknown", name="Late Donor", email="late@example.org")],
        )

        async def contact_arrived() -> bool:
            return await store.contacts.find_one({"_id": "dnr_unknown"}) is not None

        await h.eventually(contact_arrived)
        clock.advance(30)
        assert await mailer.run_due() == 1
        assert len(sink.to("late@example.org")) == 1

        # A tombstone erases the donor's contact: no later e-mail goes to the old address.
        publisher = KafkaRecordPublisher(infra.kafka_bootstrap, client_id="test")
        await publisher.start()
        await publisher.send(settings.topic("ksbb.pledges.contacts"), donor, None, {})
        await publisher.stop()

        async def erased() -> bool:
            return await store.contacts.find_one({"_id": donor}) is None

        await h.eventually(erased, what="tombstone applied")
        assert await store.contacts.find_one({"_id": recipient}) is not None
