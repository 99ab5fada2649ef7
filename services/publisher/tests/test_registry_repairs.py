"""The registry is authoritative for needs and recipients: a version reused with other content, or a restated
state that differs, repairs the read model; a redelivery or an older change does not."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts.events.registry import NeedChanged, RecipientUpdated, public_state_digest
from ksbb_publisher.domain.projection import VersionedPart, batch_updates, fold, need_part, recipient_part

from .support import NOW, need, recipient

pytestmark = pytest.mark.unit
KELURAHAN = "31.71.01.1001"


def need_at(version: int, quantity: int, *, restated: bool = False) -> VersionedPart:
    event = need("need_1", "rcp_1", "org_1", KELURAHAN, quantity=quantity, version=version, cls=NeedChanged)
    return need_part(event.model_copy(update={"restated": restated}), NOW)


def recipient_at(version: int, households: int, *, restated: bool = False) -> VersionedPart:
    event = recipient("rcp_1", "org_1", KELURAHAN, "RW 03", households=households, version=version,
                      cls=RecipientUpdated)
    return recipient_part(event.model_copy(update={"restated": restated}), NOW)


def need_state(parts: list[VersionedPart]) -> dict[str, Any]:
    doc = fold(parts)[("needs", "need_1")]
    return {"version": doc["version"], "quantity": doc["quantity"]}


def households(parts: list[VersionedPart]) -> dict[str, Any]:
    doc = fold(parts)[("recipients", "rcp_1")]
    return {"version": doc["version"], "households": doc["beneficiaries"]["households"]}


def test_a_redelivered_need_changes_nothing_but_a_reused_version_with_other_content_replaces_it() -> None:
    first = need_at(3, 40)
    assert need_state([first, need_at(3, 40)]) == {"version": 3, "quantity": 40}
    assert need_at(3, 40).repair_reason(fold([first])[("needs", "need_1")]) is None
    assert need_state([first, need_at(3, 55)]) == {"version": 3, "quantity": 55}
    assert need_at(3, 55).repair_reason(fold([first])[("needs", "need_1")]) == "same_version_other_figures"


def test_an_older_need_or_recipient_is_ignored_unless_the_registry_restates_its_state() -> None:
    assert need_state([need_at(5, 40), need_at(4, 20)]) == {"version": 5, "quantity": 40}
    assert need_state([need_at(5, 40), need_at(4, 20, restated=True)]) == {"version": 4, "quantity": 20}
    assert need_state([need_at(5, 40), need_at(5, 40, restated=True)]) == {"version": 5, "quantity": 40}
    # After the restated state the registry's next change is newer again.
    assert need_state([need_at(5, 40), need_at(4, 20, restated=True), need_at(5, 30)]) == {"version": 5,
                                                                                           "quantity": 30}
    assert households([recipient_at(6, 40), recipient_at(5, 10)]) == {"version": 6, "households": 40}
    assert households([recipient_at(6, 40), recipient_at(5, 10, restated=True)]) == {"version": 5,
                                                                                     "households": 10}
    assert households([recipient_at(6, 40), recipient_at(6, 12)]) == {"version": 6, "households": 12}


def test_a_document_projected_before_digests_were_kept_is_repaired_only_by_a_restated_state() -> None:
    legacy = {k: v for k, v in fold([need_at(3, 40)])[("needs", "need_1")].items() if k != "state_digest"}
    assert need_at(3, 55).repair_reason(legacy) is None
    assert need_at(3, 55, restated=True).repair_reason(legacy) == "same_version_other_figures"


def test_the_stored_digest_is_the_registry_s_digest_of_the_public_state() -> None:
    event = need("need_1", "rcp_1", "org_1", KELURAHAN, quantity=40, version=2, cls=NeedChanged)
    assert need_part(event, NOW).digest == public_state_digest(event.need) == event.need_digest()
    later = event.model_copy(update={"need": event.need.model_copy(update={"version": 9})})
    assert later.need_digest() == event.need_digest(), "the version is not part of the state"


@given(st.lists(st.tuples(st.integers(1, 6), st.sampled_from([10, 20, 40]), st.booleans()), min_size=1, max_size=12),
       st.integers(1, 6), st.sampled_from([10, 20, 40]))
def test_batched_application_equals_folding_one_by_one(events: list[tuple[int, int, bool]], v: int, q: int) -> None:
    parts = [need_at(version, quantity, restated=restated) for version, quantity, restated in events]
    stored = fold([need_at(v, q)])
    expected = fold(parts, stored)[("needs", "need_1")]
    updates = batch_updates(parts, stored).get(("needs", "need_1"), {})
    batched = {**stored[("needs", "need_1")], **updates}
    assert {k: batched[k] for k in ("version", "state_digest", "quantity")} == {
        k: expected[k] for k in ("version", "state_digest", "quantity")
    }


@given(st.permutations([(2, 10, False), (4, 20, False), (4, 20, False), (3, 40, False)]))
def test_without_restatements_the_newest_change_wins_in_any_order(order: list[tuple[int, int, bool]]) -> None:
    parts = [need_at(version, quantity, restated=restated) for version, quantity, restated in order]
    assert need_state(parts) == {"version": 4, "quantity": 20}
