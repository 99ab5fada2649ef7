"""Anti-entropy (pure): a restatement re-announces the ledger as it is, at its version, and changes nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts.events.pledges import NeedLedgerChanged, ledger_figures_digest
from ksbb_pledges.domain.ledger import new_ledger, reserve
from ksbb_pledges.domain.restate import restate

from .test_ledger_rules import NOW, need, open_ledger, pledge, reserved

pytestmark = pytest.mark.unit


@given(st.lists(st.integers(1, 5), max_size=4))
def test_a_restatement_announces_the_current_figures_and_version_with_their_digest(quantities: list[int]) -> None:
    ledger = open_ledger(30)
    for index, quantity in enumerate(quantities):
        ledger = reserved(ledger, f"plg_{index}", quantity)
    change = restate(ledger, NOW)
    (event,) = change.events
    assert isinstance(event, NeedLedgerChanged) and event.restated
    assert (event.ledger_version, event.committed, event.requested) == (ledger["ledger_version"], sum(quantities), 30)
    assert event.ledger_digest == ledger_figures_digest(30, sum(quantities), 0, 0) == event.figures_digest()
    after = change.applied_to(ledger)
    assert {k: v for k, v in after.items() if k != "restated_at"} == ledger  # figures and version untouched


def test_a_ledger_never_announced_is_not_restated_and_every_change_carries_its_digest() -> None:
    fresh = new_ledger(need(10), recipient_blocked=False, recipient_version=0, now=NOW)
    assert restate(fresh, NOW).noop
    decided = reserve(open_ledger(10), pledge("plg_1", 4), now=NOW)
    (announced,) = [e for e in decided.events if isinstance(e, NeedLedgerChanged)]
    assert not announced.restated and announced.ledger_digest == ledger_figures_digest(10, 4, 0, 0)
