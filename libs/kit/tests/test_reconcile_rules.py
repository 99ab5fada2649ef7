"""`ksbb reconcile` compares views by version and figures' digest, and names each side of a difference."""

from __future__ import annotations

import pytest
from ksbb_kit.reconcile import LedgerView, compare_views

pytestmark = pytest.mark.unit
V = LedgerView


def test_equal_views_agree_and_every_kind_of_difference_is_reported() -> None:
    owned = {"n1": V(3, (10, 4, 0, 0)), "n2": V(2, (5, 5, 0, 0)), "n3": V(1, (1, 0, 0, 0))}
    registry = {"n1": V(3, (10, 4, 0, 0)), "n2": V(2, (5, 4, 0, 0)), "n4": V(1, (2, 0, 0, 0))}
    publisher = {"n1": V(4, (10, 4, 0, 0)), "n2": V(2, (5, 5, 0, 0)), "n3": V(1, (1, 0, 0, 0))}
    found = compare_views("need_ledger", "pledges", owned, {"registry": registry, "publisher": publisher})
    assert [(d.view, d.aggregate_id) for d in found] == [
        ("publisher", "n1"),  # same figures, other version
        ("registry", "n2"),  # same version, other figures (digest)
        ("registry", "n3"),  # the view lacks it
        ("registry", "n4"),  # the owner lacks it
    ]
    same_version = found[1]
    assert same_version.owner_state is not None and same_version.view_state is not None
    assert same_version.owner_state["version"] == same_version.view_state["version"] == 2
    assert same_version.owner_state["digest"] != same_version.view_state["digest"]
    assert found[2].view_state is None and found[3].owner_state is None
    assert compare_views("need_ledger", "pledges", owned, {"publisher": dict(owned)}) == []
