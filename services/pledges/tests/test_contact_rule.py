"""Who reads a recipient's contact person through a pledge, and until when (pure, explicit times)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ksbb_contracts.vocab import PledgeStatus
from ksbb_pledges.domain.contact import CONTACT_WITHIN_HOURS, check_contact_visible
from ksbb_pledges.domain.errors import NotPermitted, PledgeNotLive
from ksbb_pledges.domain.lifecycle import Actor, ExpiryPolicy, expiry_decision

pytestmark = pytest.mark.unit
PLEDGED_AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def status_at(moment: datetime, policy: ExpiryPolicy) -> str:
    """The status of a never-confirmed pledge made at PLEDGED_AT, as the expiry sweep leaves it at `moment`."""
    pledge = {"status": "pledged", "created_at": PLEDGED_AT, "planned_date": "2026-03-05", "reminded_stage": "pledged"}
    decision = expiry_decision(pledge, moment, policy)
    return "expired" if decision is not None and decision.action == "expire" else "pledged"


def test_the_donor_is_asked_to_call_within_two_days_and_may_while_the_pledge_waits() -> None:
    policy = ExpiryPolicy()
    assert CONTACT_WITHIN_HOURS == 48 == policy.confirm_window / timedelta(hours=1)
    almost = PLEDGED_AT + timedelta(hours=CONTACT_WITHIN_HOURS) - timedelta(seconds=1)
    check_contact_visible({Actor.DONOR}, status_at(almost, policy))
    # Not confirmed within 2×24 h: the pledge expires, and with it the donor's access to the contact.
    with pytest.raises(PledgeNotLive) as closed:
        check_contact_visible({Actor.DONOR}, status_at(PLEDGED_AT + timedelta(hours=CONTACT_WITHIN_HOURS), policy))
    assert closed.value.status == "expired"


@pytest.mark.parametrize("status", list(PledgeStatus))
def test_the_pledging_donor_reads_it_while_the_pledge_counts(status: PledgeStatus) -> None:
    if status in (PledgeStatus.CANCELLED, PledgeStatus.REJECTED, PledgeStatus.EXPIRED):
        with pytest.raises(PledgeNotLive):
            check_contact_visible({Actor.DONOR}, status)
    else:
        check_contact_visible({Actor.DONOR}, status)  # delivered too: the donor may need to call back


@pytest.mark.parametrize("actors", [set(), {Actor.ADMIN}, {Actor.RECIPIENT}, {Actor.FACILITATOR, Actor.ADMIN}])
def test_nobody_else_reads_it_admins_included(actors: set[Actor]) -> None:
    with pytest.raises(NotPermitted):
        check_contact_visible(actors, PledgeStatus.CONFIRMED)
    with pytest.raises(NotPermitted):  # the relation is checked before the state
        check_contact_visible(actors, PledgeStatus.EXPIRED)
