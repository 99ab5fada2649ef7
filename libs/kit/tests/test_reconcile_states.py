"""`ksbb reconcile` compares the registry's needs and recipients with the publisher's by the state's digest."""

from __future__ import annotations

import pytest
from ksbb_kit.reconcile import StateView, compare_views, same_state

pytestmark = pytest.mark.unit
S = StateView


def test_states_agree_by_digest_alone_and_every_other_kind_of_difference_is_reported() -> None:
    owned = {"n1": S(7, "aaa"), "n2": S(3, "bbb"), "n3": S(2, "ccc"), "n5": S(4, None)}
    publisher = {"n1": S(5, "aaa"), "n2": S(3, "bbx"), "n4": S(1, "ddd"), "n5": S(4, None), "n6": S(2, None)}
    found = compare_views("need", "registry", owned, {"publisher": publisher}, same_state)
    assert [d.aggregate_id for d in found] == [
        "n2",  # same version, other state
        "n3",  # the view lacks it
        "n4",  # the owner lacks it
        "n5",  # the owner's document is not a valid state: never counted as agreeing
        "n6",
    ]
    assert found[0].owner_state == {"version": 3, "digest": "bbb"}
    assert found[0].view_state == {"version": 3, "digest": "bbx"}
    assert (found[0].aggregate, found[0].owner, found[0].view) == ("need", "registry", "publisher")
    # n1: the registry's version also counts unpublished changes (ledger figures): not a difference.
    assert compare_views("recipient", "registry", {"r": S(9, "x")}, {"publisher": {"r": S(4, "x")}}, same_state) == []
    # A view kept before digests existed differs until the anti-entropy pass restates it.
    assert len(compare_views("recipient", "registry", {"r": S(4, "x")}, {"publisher": {"r": S(4, None)}},
                             same_state)) == 1
