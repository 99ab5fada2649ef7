"""The ledger owner is authoritative: a version reused with other figures, or a restated state, repairs progress."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_publisher.domain.projection import VersionedPart, batch_updates, fold, ledger_part

from .support import NOW, ledger

pytestmark = pytest.mark.unit


def part(version: int, committed: int, *, restated: bool = False) -> VersionedPart:
    event = ledger("need_1", "rcp_1", requested=50, committed=committed, version=version)
    return ledger_part(event.model_copy(update={"restated": restated}), NOW)


def progress(parts: list[VersionedPart]) -> dict[str, int]:
    doc = fold(parts)[("needs", "need_1")]
    return {"version": doc["ledger_version"], "committed": doc["progress"]["committed"]}


def test_a_redelivered_event_changes_nothing_but_a_reused_version_with_other_figures_replaces_them() -> None:
    assert progress([part(3, 7), part(3, 7)]) == {"version": 3, "committed": 7}
    assert progress([part(3, 7), part(3, 9)]) == {"version": 3, "committed": 9}
    assert part(3, 9).repair_reason(fold([part(3, 7)])[("needs", "need_1")]) == "same_version_other_figures"


def test_an_older_version_is_ignored_unless_it_is_the_owner_restating_its_state() -> None:
    assert progress([part(5, 7), part(4, 2)]) == {"version": 5, "committed": 7}
    assert progress([part(5, 7), part(4, 2, restated=True)]) == {"version": 4, "committed": 2}
    assert progress([part(5, 7), part(5, 7, restated=True)]) == {"version": 5, "committed": 7}
    # After the restated state the owner's next change is newer again.
    assert progress([part(5, 7), part(4, 2, restated=True), part(5, 3)]) == {"version": 5, "committed": 3}


@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 9), st.booleans()), min_size=1, max_size=12),
       st.integers(1, 6), st.integers(0, 9))
def test_batched_application_equals_folding_one_by_one(events: list[tuple[int, int, bool]], v: int, c: int) -> None:
    parts = [part(version, committed, restated=restated) for version, committed, restated in events]
    stored = fold([part(v, c)])
    expected = fold(parts, stored)[("needs", "need_1")]
    updates = batch_updates(parts, stored).get(("needs", "need_1"), {})
    batched = {**stored[("needs", "need_1")], **updates}
    assert {k: batched[k] for k in ("ledger_version", "ledger_digest", "progress")} == {
        k: expected[k] for k in ("ledger_version", "ledger_digest", "progress")
    }
