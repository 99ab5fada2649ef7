"""Offers and donor profiles (pure): proposals, planning default, acceptance outcome, what a profile publishes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from ksbb_contracts.events.pledges import (
    DonorContactRecorded,
    DonorProfileUpdated,
    MatchAccepted,
    MatchProposed,
    OfferCreated,
)
from ksbb_pledges.domain.donors import update_profile
from ksbb_pledges.domain.errors import AvailableUntilPast
from ksbb_pledges.domain.matching import Allocation
from ksbb_pledges.domain.offers import (
    OfferTerms,
    accepted,
    check_available_until,
    default_planned_date,
    new_offer,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TERMS = OfferTerms(item="masks", quantity=12, area_codes=["31.72"], available_until=date(2026, 3, 12))


def test_an_offer_with_proposals_announces_both() -> None:
    offer, events = new_offer(
        "ofr_1",
        "dnr_1",
        TERMS,
        [Allocation("ned_1", "rcp_1", 5), Allocation("ned_2", "rcp_2", 7)],
        request_hash="h",
        now=NOW,
    )
    assert offer["status"] == "proposed" and offer["available_until"] == "2026-03-12"
    assert [p["quantity"] for p in offer["proposals"]] == [5, 7]
    assert [type(e) for e in events] == [OfferCreated, MatchProposed]


def test_an_offer_nothing_fits_is_unmatched_and_proposes_nothing() -> None:
    offer, events = new_offer("ofr_1", "dnr_1", TERMS, [], request_hash="h", now=NOW)
    assert offer["status"] == "unmatched" and [type(e) for e in events] == [OfferCreated]


def test_planning_defaults_to_three_days_within_availability() -> None:
    assert default_planned_date(date(2026, 3, 12), date(2026, 3, 2)) == date(2026, 3, 5)
    assert default_planned_date(date(2026, 3, 3), date(2026, 3, 2)) == date(2026, 3, 3)
    check_available_until(date(2026, 3, 2), date(2026, 3, 2))
    with pytest.raises(AvailableUntilPast):
        check_available_until(date(2026, 3, 1), date(2026, 3, 2))


def test_acceptance_records_pledges_dropped_needs_and_what_is_left() -> None:
    offer = {"_id": "ofr_1", "donor_id": "dnr_1"}
    fields, event = accepted(offer, ["plg_1"], [{"need_id": "ned_2", "reason": "over_pledged"}], -3, NOW)
    assert (fields["status"], fields["unallocated"]) == ("accepted", 0)
    assert isinstance(event, MatchAccepted) and event.dropped_need_ids == ["ned_2"]


def test_a_profile_shows_the_name_only_when_opted_in_and_keeps_the_contact_confidential() -> None:
    profile = {"kind": "company", "display_name": "PT Sumber Berkah", "show_name": False, "subject": "s"}
    first = update_profile("dnr_1", None, {**profile, "contact": {"name": "Andi", "email": None, "phone": None}}, NOW)
    assert first.version == 1
    public, contact = first.events
    assert isinstance(public, DonorProfileUpdated) and public.display_name is None
    assert isinstance(contact, DonorContactRecorded) and contact.name == "Andi"
    second = update_profile("dnr_1", {"version": 1}, {**profile, "show_name": True, "contact": None}, NOW)
    assert second.version == 2 and [type(e) for e in second.events] == [DonorProfileUpdated]
    assert second.events[0].display_name == "PT Sumber Berkah"
