"""E-mail rules without I/O: which pledge events mail whom with which facts, and the e-mail retry schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from ksbb_contracts.events.pledges import (
    PledgeCancelled,
    PledgeConfirmed,
    PledgeCreated,
    PledgeDelivered,
    PledgeExpired,
    PledgeExpiring,
    PledgePublic,
)
from ksbb_contracts.vocab import DeliveryMode, Item, PledgeStatus
from ksbb_notifier.domain.mailing import (
    Addressee,
    Contact,
    after_failed_send,
    endpoint_disabled_mail,
    is_last_try,
    needs_handover_contact,
    pledge_cancelled_mail,
    pledge_confirmed_mail,
    pledge_created_mail,
    pledge_delivered_mail,
    pledge_expired_mail,
    pledge_expiring_mail,
    wib,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
SCHEDULE = [0.0, 30.0, 300.0]
PLEDGE = PledgePublic(
    pledge_id="plg_1",
    need_id="need_1",
    recipient_id="rcp_1",
    organisation_id="org_1",
    donor_id="dnr_1",
    kelurahan_code="31.71.01.1001",
    item=Item.SEMBAKO,
    quantity=10,
    mode=DeliveryMode.OWN_DELIVERY,
    planned_date=date(2026, 1, 10),
    status=PledgeStatus.PLEDGED,
    version=1,
)
FACTS = {
    "pledge_id": "plg_1",
    "recipient_id": "rcp_1",
    "item": "sembako",
    "quantity": 10,
    "planned_date": "2026-01-10",
}


def test_a_new_pledge_mails_donor_recipient_and_organisation_with_the_call_deadline() -> None:
    plan = pledge_created_mail(PledgeCreated(pledge=PLEDGE, occurred_at=NOW))
    assert plan.context == {**FACTS, "call_by": "07-01-2026 15:00 WIB"}  # 2×24 hours later, in WIB
    assert plan.addressees == (
        Addressee("donor_pledge_created", "donor", "dnr_1"),
        Addressee("pledge_new", "recipient", "rcp_1"),
        Addressee("pledge_new", "organisation", "org_1"),
    )
    assert needs_handover_contact("donor_pledge_created") and not needs_handover_contact("pledge_new")


def test_later_pledge_events_mail_their_own_addressees() -> None:
    confirmed = pledge_confirmed_mail(PledgeConfirmed(pledge=PLEDGE, occurred_at=NOW))
    assert confirmed.context == FACTS and [a.kind for a in confirmed.addressees] == ["donor_pledge_confirmed"]
    expiring = pledge_expiring_mail(
        PledgeExpiring(pledge=PLEDGE, occurred_at=NOW, expires_at=NOW + timedelta(hours=12))
    )
    assert expiring.context["expires_at"] == wib(NOW + timedelta(hours=12)) == "06-01-2026 03:00 WIB"
    expired = pledge_expired_mail(PledgeExpired(pledge=PLEDGE, occurred_at=NOW, reason="not_confirmed"))
    assert expired.context["reason"] == "not_confirmed"
    delivered = pledge_delivered_mail(PledgeDelivered(pledge=PLEDGE, occurred_at=NOW, received_quantity=9))
    assert delivered.context["received_quantity"] == 9
    assert [a.to_kind for p in (expiring, expired, delivered) for a in p.addressees] == ["donor"] * 3
    cancelled = pledge_cancelled_mail(PledgeCancelled(pledge=PLEDGE, occurred_at=NOW, reason="donor_cancelled"))
    assert [(a.kind, a.to_kind, a.to_id) for a in cancelled.addressees] == [
        ("pledge_cancelled", "recipient", "rcp_1"),
        ("pledge_cancelled", "organisation", "org_1"),
    ]


def test_a_disabled_endpoint_is_told_to_its_organisation_only() -> None:
    plan = endpoint_disabled_mail("whe_1", "org_1", "https://x.example", "gone")
    assert plan.addressees == (Addressee("endpoint_disabled", "organisation", "org_1"),)
    assert plan.context == {"endpoint_id": "whe_1", "url": "https://x.example", "reason": "gone"}
    assert endpoint_disabled_mail("whe_2", None, "https://x.example", "gone").addressees == ()


def test_failed_sends_follow_the_schedule_then_fail() -> None:
    later = NOW + timedelta(seconds=3)
    first = after_failed_send(1, SCHEDULE, claimed_at=NOW, now=later, error="SMTPError: x" * 100)
    assert first["next_attempt_at"] == later + timedelta(seconds=30) and "status" not in first
    assert len(first["last_error"]) == 500 and first["attempts"] == 1
    assert after_failed_send(2, SCHEDULE, claimed_at=NOW, now=later, error="e")["next_attempt_at"] == later + timedelta(
        seconds=300
    )
    last = after_failed_send(3, SCHEDULE, claimed_at=NOW, now=later, error="e")
    assert last == {"status": "failed", "failed_at": NOW, "last_error": "e", "attempts": 3}
    assert [is_last_try(n, SCHEDULE) for n in (1, 2, 3, 4)] == [False, False, True, True]


def test_contacts_greet_by_name_and_hand_over_only_what_the_donor_needs() -> None:
    donor = Contact("dnr_1", "donor", name="Budi")
    assert donor.greeting_name == "Budi"
    recipient = Contact(
        "rcp_1", "recipient", contact_name="Ibu Siti", phone="0812", street_address="Jl. 1", organisation_id="org_1"
    )
    assert recipient.greeting_name == "Ibu Siti"
    assert recipient.handover() == {
        "contact_name": "Ibu Siti",
        "phone": "0812",
        "email": None,
        "street_address": "Jl. 1",
    }
    assert Contact("org_1", "organisation").greeting_name == "Bapak/Ibu"
