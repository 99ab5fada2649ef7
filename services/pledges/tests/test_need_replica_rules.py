"""The registry is authoritative for the need terms a ledger keeps: a version reused with other content, or a
restated snapshot that differs, replaces them; a redelivery or an older change does not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts.events.registry import public_state_digest
from ksbb_contracts.vocab import NeedStatus
from ksbb_pledges.domain.ledger import apply_need, new_ledger
from ksbb_pledges.domain.need_replica import RESTATED, SAME_VERSION_OTHER_CONTENT, need_repair
from ksbb_pledges.domain.pledge import Ledger

from .conftest import need_snapshot

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def snapshot(version: int, quantity: int):  # type: ignore[no-untyped-def]
    return need_snapshot("ned_1", quantity=quantity, version=version)


def held(version: int, quantity: int) -> Ledger:
    fresh = new_ledger(snapshot(version, quantity), recipient_blocked=False, recipient_version=0, now=NOW)
    return apply_need(fresh, snapshot(version, quantity), None, NOW).applied_to(fresh)


def after(ledger: Ledger, version: int, quantity: int, *, restated: bool = False) -> Ledger:
    return apply_need(ledger, snapshot(version, quantity), None, NOW, restated=restated).applied_to(ledger)


def test_a_redelivery_changes_nothing_and_a_reused_version_with_other_content_repairs_the_terms() -> None:
    ledger = held(3, 40)
    assert ledger["need_digest"] == public_state_digest(snapshot(3, 40))
    assert apply_need(ledger, snapshot(3, 40), None, NOW).noop
    assert need_repair(ledger, snapshot(3, 55), restated=False) == SAME_VERSION_OTHER_CONTENT
    repaired = after(ledger, 3, 55)
    assert (repaired["need_version"], repaired["requested"]) == (3, 55)


def test_an_older_snapshot_is_ignored_unless_restated_and_a_ledger_without_digest_waits_for_one() -> None:
    ledger = held(5, 40)
    assert apply_need(ledger, snapshot(4, 20), None, NOW).noop
    assert need_repair(ledger, snapshot(4, 20), restated=True) == RESTATED
    assert (after(ledger, 4, 20, restated=True)["need_version"], after(ledger, 4, 20, restated=True)["requested"]) == (
        4, 20)
    assert apply_need(ledger, snapshot(4, 40), None, NOW, restated=True).noop, "an equal state is no repair"
    legacy = {k: v for k, v in ledger.items() if k != "need_digest"}
    assert apply_need(legacy, snapshot(5, 55), None, NOW).noop
    assert after(legacy, 5, 55, restated=True)["requested"] == 55


def test_a_restated_closed_need_releases_like_the_closure_it_repairs() -> None:
    ledger = held(2, 40)
    closed = need_snapshot("ned_1", quantity=40, version=2, status=NeedStatus.CLOSED)
    assert need_repair(ledger, closed, restated=True) == SAME_VERSION_OTHER_CONTENT
    assert apply_need(ledger, closed, None, NOW, restated=True).applied_to(ledger)["status"] == "closed"


@given(st.lists(st.tuples(st.integers(1, 6), st.sampled_from([10, 20, 40])), min_size=1, max_size=10),
       st.randoms(use_true_random=False))
def test_without_restatements_the_order_of_snapshots_does_not_matter_when_versions_are_unique(
    events: list[tuple[int, int]], rnd: object
) -> None:
    # One content per version (the registry never reuses one unless it crashed): the newest always wins.
    content = {version: quantity for version, quantity in events}
    snapshots = [(version, content[version]) for version, _ in events]
    shuffled = list(snapshots)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    results = []
    for order in (snapshots, shuffled):
        ledger = held(1, 5) if 1 not in content else held(1, content[1])
        for version, quantity in order:
            ledger = after(ledger, version, quantity)
        results.append((ledger["need_version"], ledger["requested"]))
    newest = max(content)
    assert results[0] == results[1] == ((newest, content[newest]) if newest > 1 else results[0])
