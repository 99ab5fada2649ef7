"""The pledges service is authoritative for pledges and donor profiles: a version reused with other content, or a
restatement that differs, repairs the publisher's view; a redelivery or an older change does not; a restatement
adds no feed entry (the feed shows only real changes)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts.envelope import CloudEvent
from ksbb_contracts.events.pledges import DonorProfileUpdated, PledgeConfirmed, PledgeCreated, PledgeRestated
from ksbb_contracts.vocab import PledgeStatus
from ksbb_kit.testing.factories import envelope, make_event, pledge_public
from ksbb_publisher.app.projection import changes_of
from ksbb_publisher.domain.feed import feed_entry
from ksbb_publisher.domain.projection import VersionedPart, batch_updates, donor_part, fold, pledge_part

from .support import NOW

pytestmark = pytest.mark.unit
KEY = ("pledges", "plg_1")


def pledge_at(
    version: int, quantity: int, status: PledgeStatus = PledgeStatus.PLEDGED, *, restated: bool = False
) -> VersionedPart:
    public = pledge_public(pledge_id="plg_1", version=version, quantity=quantity, status=status)
    cls = PledgeRestated if restated else PledgeCreated
    return pledge_part(cls(pledge=public, occurred_at=NOW))


def held(parts: list[VersionedPart]) -> dict[str, Any]:
    doc = fold(parts)[KEY]
    return {"version": doc["version"], "quantity": doc["quantity"], "status": doc["status"]}


def test_a_redelivered_pledge_changes_nothing_but_a_reused_version_with_other_content_replaces_it() -> None:
    first = pledge_at(2, 5)
    assert pledge_at(2, 5).repair_reason(fold([first])[KEY]) is None
    assert held([first, pledge_at(2, 5)]) == {"version": 2, "quantity": 5, "status": "pledged"}
    other = pledge_at(2, 5, PledgeStatus.CANCELLED)
    assert other.repair_reason(fold([first])[KEY]) == "same_version_other_figures"
    assert held([first, other]) == {"version": 2, "quantity": 5, "status": "cancelled"}


def test_an_older_pledge_is_ignored_unless_the_owner_restates_a_state_that_differs() -> None:
    ahead = pledge_at(4, 5, PledgeStatus.CONFIRMED)
    assert held([ahead, pledge_at(2, 7)]) == {"version": 4, "quantity": 5, "status": "confirmed"}
    restated = pledge_at(2, 7, restated=True)
    assert restated.repair_reason(fold([ahead])[KEY]) == "restated"
    assert held([ahead, restated]) == {"version": 2, "quantity": 7, "status": "pledged"}
    same = pledge_at(4, 5, PledgeStatus.CONFIRMED, restated=True)
    assert same.repair_reason(fold([ahead])[KEY]) is None, "a restatement of the state held is no repair"
    assert not same.is_newer_than(fold([ahead])[KEY])


def test_a_restatement_of_a_pledge_the_view_lost_creates_it_without_counting_a_repair() -> None:
    restated = pledge_at(3, 6, PledgeStatus.CONFIRMED, restated=True)
    assert restated.repair_reason(None) is None and restated.is_newer_than(None)
    assert held([restated]) == {"version": 3, "quantity": 6, "status": "confirmed"}


def test_a_view_kept_before_digests_is_repaired_only_by_a_restatement() -> None:
    legacy = {k: v for k, v in fold([pledge_at(2, 5)])[KEY].items() if k != "state_digest"}
    assert pledge_at(2, 9).repair_reason(legacy) is None
    assert pledge_at(2, 9, restated=True).repair_reason(legacy) == "same_version_other_figures"


@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.integers(1, 3), st.sampled_from(list(PledgeStatus)), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_a_batch_ends_where_the_same_events_one_by_one_end(
    steps: list[tuple[int, int, PledgeStatus, bool]],
) -> None:
    parts = [pledge_at(version, quantity, status, restated=restated) for version, quantity, status, restated in steps]
    one_by_one: dict[Any, dict[str, Any]] = {}
    for part in parts:
        one_by_one = fold([part], one_by_one)
    updates = batch_updates(parts, {})
    assert {k: v for k, v in one_by_one[KEY].items() if k != "_id"} == updates[KEY]


def test_a_restatement_updates_the_pledge_but_adds_no_feed_entry() -> None:
    restated = make_event(PledgeRestated)
    assert restated.restated and feed_entry(restated, "evt_1", NOW) is None
    confirmed = make_event(PledgeConfirmed)
    items: list[tuple[Any, CloudEvent]] = [(confirmed, envelope(confirmed)), (restated, envelope(restated))]
    changes = changes_of(items, NOW)
    assert [part.model for part in changes.parts] == ["pledges", "pledges"]
    assert [entry["event_type"] for entry in changes.feed] == [PledgeConfirmed.event_type]


def donor_at(version: int, name: str, *, show_name: bool = True, restated: bool = False) -> VersionedPart:
    event = make_event(DonorProfileUpdated, donor_id="dnr_1", version=version, display_name=name, show_name=show_name,
                       restated=restated)
    return donor_part(event)


def test_a_donor_profile_reused_at_its_version_or_restated_older_repairs_the_view_and_a_hidden_name_stays_out() -> None:
    key = ("donors", "dnr_1")
    first = donor_at(2, "Toko Berkah")
    assert donor_at(2, "Toko Berkah").repair_reason(fold([first])[key]) is None
    renamed = donor_at(2, "Toko Lain")
    assert renamed.repair_reason(fold([first])[key]) == "same_version_other_figures"
    assert fold([first, renamed])[key]["display_name"] == "Toko Lain"
    older = donor_at(1, "Toko Asal", restated=True)
    assert older.repair_reason(fold([first])[key]) == "restated"
    assert not donor_at(1, "Toko Asal").is_newer_than(fold([first])[key])
    hidden = fold([donor_at(3, "PT Rahasia", show_name=False)])[key]
    assert hidden["display_name"] is None and "PT Rahasia" not in str(hidden)
    assert hidden["state_digest"] == donor_at(3, "Nama Lain", show_name=False).digest, "the digest hides the name"
