"""`ksbb reconcile` for pledges and donors (pure part): which views show the owner's state, and its digest."""

from __future__ import annotations

import pytest
from ksbb_contracts.events.pledges import PledgeRestated, donor_profile_digest, pledge_state_digest
from ksbb_kit.reconcile import compare_views
from ksbb_kit.reconcile_pledges import DonorView, PledgeView, owner_donor_view, owner_view, same_donor, same_pledge
from ksbb_kit.testing.factories import make_event

pytestmark = pytest.mark.unit


def test_a_view_shows_the_owner_s_pledge_only_at_the_same_version_and_digest() -> None:
    owner = PledgeView(2, "d1", "confirmed", 5)
    assert same_pledge(owner, PledgeView(2, "d1", "confirmed", 5))
    assert not same_pledge(owner, PledgeView(2, "d2", "confirmed", 5)), "other content at the same version"
    assert not same_pledge(owner, PledgeView(4, "d1", "confirmed", 5)), "a view ahead of the owner"
    assert not same_pledge(owner, PledgeView(1, "d1", "confirmed", 5)), "a view behind"
    # A view kept before digests compares by status and quantity.
    assert same_pledge(owner, PledgeView(2, None, "confirmed", 5))
    assert not same_pledge(owner, PledgeView(2, None, "cancelled", 5))
    assert not same_pledge(owner, PledgeView(2, None, "confirmed", 6))


def test_the_owner_s_digest_is_the_one_its_events_carry_and_an_invalid_pledge_has_none() -> None:
    event = make_event(PledgeRestated)
    stored = event.pledge.model_dump(mode="json")
    view = owner_view(stored)
    assert view == PledgeView(event.pledge.version, pledge_state_digest(event.pledge), stored["status"],
                              stored["quantity"])
    assert owner_view({**stored, "quantity": 0}).digest is None


def test_every_differing_missing_or_extra_pledge_is_one_difference() -> None:
    owned = {"p1": PledgeView(1, "a", "pledged", 1), "p2": PledgeView(2, "b", "pledged", 2),
             "p3": PledgeView(1, "c", "pledged", 3)}
    held = {"p1": PledgeView(1, "a", "pledged", 1), "p2": PledgeView(2, "x", "cancelled", 2),
            "p4": PledgeView(1, "d", "pledged", 4)}
    found = compare_views("pledge", "pledges", owned, {"publisher": held}, same_pledge)
    assert [(d.aggregate_id, d.owner_state is None, d.view_state is None) for d in found] == [
        ("p2", False, False), ("p3", False, True), ("p4", True, False)]


def test_a_donor_view_shows_the_owner_s_profile_only_at_the_same_version_and_digest() -> None:
    stored = {"_id": "dnr_1", "kind": "company", "display_name": "PT Rahasia", "show_name": False, "version": 2}
    owner = owner_donor_view(stored)
    assert owner.digest == donor_profile_digest("dnr_1", "company", None, False)
    assert same_donor(owner, DonorView(2, owner.digest))
    assert not same_donor(owner, DonorView(2, "other"))
    assert not same_donor(owner, DonorView(3, owner.digest))
    assert not same_donor(owner, DonorView(2, None)), "a view kept before digests waits for a restatement"
    assert owner_donor_view({**stored, "kind": "unknown"}).digest is None
