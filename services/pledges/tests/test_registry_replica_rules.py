"""The registry is authoritative for the recipients and organisations this service keeps: a version reused with
other content, or a restated snapshot that differs, replaces the replica and the recipient blocking of each
ledger; a redelivery or an older change does not (ADR 0005)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts.events.registry import RESTATED, SAME_VERSION_OTHER_CONTENT, public_state_digest
from ksbb_contracts.vocab import RecipientStatus
from ksbb_pledges.domain.ledger import block_recipient, new_ledger
from ksbb_pledges.domain.pledge import Ledger
from ksbb_pledges.domain.registry_replicas import blocking_repair, replica_repair, replica_takes

from .conftest import need_snapshot, recipient_snapshot

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def digest(version: int, status: RecipientStatus = RecipientStatus.ACTIVE, households: int = 10) -> str:
    return public_state_digest(recipient_snapshot("rcp_a", version=version, status=status, households=households))


def test_a_replica_takes_newer_snapshots_and_repairs_only_by_the_registry_s_rule() -> None:
    held = {"version": 3, "state_digest": digest(3)}
    assert replica_takes(None, 1, digest(1), restated=False), "nothing held yet"
    assert replica_takes({"contact": {}}, 1, digest(1), restated=False), "a replica a contact event created"
    assert replica_takes(held, 4, digest(4), restated=False)
    assert replica_repair(held, 4, digest(4), restated=False) is None, "a newer version is no repair"
    assert not replica_takes(held, 3, digest(3), restated=False), "a redelivery"
    assert not replica_takes(held, 2, digest(2), restated=False), "an older change"
    assert replica_repair(held, 3, digest(3, households=7), restated=False) == SAME_VERSION_OTHER_CONTENT
    assert replica_repair(held, 2, digest(2, households=5), restated=True) == RESTATED, "a view ahead of its owner"
    assert not replica_takes(held, 3, digest(3), restated=True), "a restated equal state is no repair"
    legacy = {"version": 3}
    assert not replica_takes(legacy, 3, digest(3, households=7), restated=False)
    assert replica_repair(legacy, 3, digest(3, households=7), restated=True) == SAME_VERSION_OTHER_CONTENT


def ledger_blocked_at(version: int, status: RecipientStatus) -> Ledger:
    fresh = new_ledger(need_snapshot("ned_1"), recipient_blocked=False, recipient_version=0, now=NOW)
    blocked = status in (RecipientStatus.SUSPENDED, RecipientStatus.ARCHIVED)
    change = block_recipient(fresh, version, blocked, "recipient_suspended", NOW, digest=digest(version, status))
    return change.applied_to(fresh)


def test_the_blocking_a_ledger_keeps_is_repaired_at_its_version_and_when_ahead_of_the_registry() -> None:
    suspended = ledger_blocked_at(4, RecipientStatus.SUSPENDED)
    assert suspended["recipient_blocked"] and suspended["recipient_digest"] == digest(4, RecipientStatus.SUSPENDED)
    active_4 = digest(4, RecipientStatus.ACTIVE)
    assert block_recipient(suspended, 4, True, "recipient_suspended", NOW,
                           digest=digest(4, RecipientStatus.SUSPENDED)).noop, "a redelivery"
    assert blocking_repair(suspended, 4, active_4, restated=False) == SAME_VERSION_OTHER_CONTENT
    repaired = block_recipient(suspended, 4, False, "recipient_unblocked", NOW, digest=active_4).applied_to(suspended)
    assert (repaired["recipient_version"], repaired["recipient_blocked"]) == (4, False)
    # The ledger saw version 4 (suspended) that the registry lost; its restatement of version 3 wins.
    active_3 = digest(3, RecipientStatus.ACTIVE)
    assert block_recipient(suspended, 3, False, "recipient_unblocked", NOW, digest=active_3).noop
    assert blocking_repair(suspended, 3, active_3, restated=True) == RESTATED
    restated = block_recipient(suspended, 3, False, "recipient_unblocked", NOW, digest=active_3, restated=True)
    after = restated.applied_to(suspended)
    assert (after["recipient_version"], after["recipient_blocked"], after["recipient_digest"]) == (3, False, active_3)
    # Without a digest (the old call) the version alone decides, as before.
    assert block_recipient(suspended, 4, False, "recipient_unblocked", NOW).noop


@given(
    held_version=st.integers(min_value=1, max_value=20),
    version=st.integers(min_value=1, max_value=20),
    same_content=st.booleans(),
    restated=st.booleans(),
)
def test_a_replica_never_goes_back_without_a_restatement_and_never_repairs_an_equal_state(
    held_version: int, version: int, same_content: bool, restated: bool
) -> None:
    held = {"version": held_version, "state_digest": digest(held_version)}
    incoming = digest(version) if same_content else digest(version, households=99)
    takes = replica_takes(held, version, incoming, restated=restated)
    if version < held_version and not restated:
        assert not takes
    if version <= held_version and incoming == held["state_digest"]:
        assert not takes
    if version == held_version and incoming != held["state_digest"]:
        assert takes
    if version > held_version:
        assert takes and replica_repair(held, version, incoming, restated=restated) is None
