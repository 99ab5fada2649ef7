"""Anti-entropy for pledges and donor profiles (pure): a restatement re-announces one pledge or profile as it is
and changes nothing else."""

from __future__ import annotations

import pytest
from ksbb_contracts.events.pledges import (
    DonorProfileUpdated,
    PledgeCreated,
    PledgeRestated,
    donor_profile_digest,
    pledge_state_digest,
)
from ksbb_contracts.vocab import PledgeStatus
from ksbb_pledges.domain.donors import restate_profile, update_profile
from ksbb_pledges.domain.pledge import pledge_public
from ksbb_pledges.domain.restate import restate_pledge

from .test_ledger_rules import NOW, in_status, open_ledger, reserved

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("status", list(PledgeStatus))
def test_a_restatement_announces_the_pledge_s_current_state_at_its_version_with_its_digest(
    status: PledgeStatus,
) -> None:
    ledger, pledge = in_status(status)
    change = restate_pledge(ledger, pledge["pledge_id"], NOW)
    (event,) = change.events
    assert isinstance(event, PledgeRestated) and event.restated
    assert event.pledge == pledge_public(ledger, pledge)
    assert (event.pledge.status, event.pledge.version) == (status, pledge["version"])
    assert event.state_digest == pledge_state_digest(event.pledge) == event.pledge_digest()
    after = change.applied_to(ledger)
    assert {k: v for k, v in after.items() if k != "pledge_restated_at"} == ledger, "the pledge is untouched"
    assert change.changed() == [], "no copy is rewritten"


def test_only_the_named_pledge_is_restated_and_an_unknown_one_is_not() -> None:
    ledger = reserved(reserved(open_ledger(20), "plg_a", 3), "plg_b", 4)
    (event,) = restate_pledge(ledger, "plg_b", NOW).events
    assert (event.pledge.pledge_id, event.pledge.quantity) == ("plg_b", 4)
    assert restate_pledge(ledger, "plg_gone", NOW).noop


def test_the_digest_ignores_the_version_and_sees_every_public_fact() -> None:
    ledger, pledge = in_status(PledgeStatus.CONFIRMED)
    public = pledge_public(ledger, pledge)
    assert pledge_state_digest(public) == pledge_state_digest(public.model_copy(update={"version": 9}))
    for changed in ({"quantity": public.quantity + 1}, {"status": PledgeStatus.CANCELLED}, {"donor_id": "other"}):
        assert pledge_state_digest(public.model_copy(update=changed)) != pledge_state_digest(public)
    created = PledgeCreated(pledge=public, occurred_at=NOW)
    assert created.state_digest is None and not created.restated, "changes carry no digest: consumers compute it"
    assert created.pledge_digest() == pledge_state_digest(public)


@pytest.mark.parametrize("show_name", [True, False])
def test_a_donor_restatement_republishes_the_public_profile_at_its_version_without_the_contact(
    show_name: bool,
) -> None:
    current = {"kind": "company", "display_name": "PT Sumber Berkah", "show_name": show_name, "version": 3,
               "contact": {"name": "Budi", "email": "budi@example.org"}}
    update = restate_profile("dnr_1", current, NOW)
    (event,) = update.events
    assert isinstance(event, DonorProfileUpdated) and event.restated
    assert (event.version, event.display_name) == (3, "PT Sumber Berkah" if show_name else None)
    assert event.state_digest == event.profile_digest()
    assert update.fields == {"restated_at": NOW}, "the profile itself is not rewritten"
    made = update_profile("dnr_1", None, {**current, "subject": "s"}, NOW).events[0]
    assert isinstance(made, DonorProfileUpdated)
    assert event.profile_digest() == made.profile_digest(), "the digest of the change that made the profile"


def test_a_hidden_name_never_enters_the_donor_digest() -> None:
    hidden = donor_profile_digest("dnr_1", "company", "PT Rahasia", False)
    assert hidden == donor_profile_digest("dnr_1", "company", None, False) == donor_profile_digest(
        "dnr_1", "company", "Nama Lain", False)
    assert donor_profile_digest("dnr_1", "company", "PT Rahasia", True) != hidden
