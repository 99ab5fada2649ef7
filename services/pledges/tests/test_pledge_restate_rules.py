"""Anti-entropy for pledges (pure): a restatement re-announces one pledge as it is and changes nothing else."""

from __future__ import annotations

import pytest
from ksbb_contracts.events.pledges import PledgeCreated, PledgeRestated, pledge_state_digest
from ksbb_contracts.vocab import PledgeStatus
from ksbb_pledges.domain.pledge import pledge_public
from ksbb_pledges.domain.restate import restate_pledge

from .test_ledger_rules import NOW, in_status, open_ledger, reserved

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("status", list(PledgeStatus))
def test_a_restatement_announces_the_pledge_s_current_state_at_its_version_with_its_digest(
    status: PledgeStatus,
) -> None:
    ledger, pledge = in_status(status)
    change = restate_pledge(ledger, pledge["pledge_id"], NOW)
    (event,) = change.events
    assert isinstance(event, PledgeRestated) and event.restated
    assert event.pledge == pledge_public(ledger, pledge)
    assert (event.pledge.status, event.pledge.version) == (status, pledge["version"])
    assert event.state_digest == pledge_state_digest(event.pledge) == event.pledge_digest()
    after = change.applied_to(ledger)
    assert {k: v for k, v in after.items() if k != "pledge_restated_at"} == ledger, "the pledge is untouched"
    assert change.changed() == [], "no copy is rewritten"


def test_only_the_named_pledge_is_restated_and_an_unknown_one_is_not() -> None:
    ledger = reserved(reserved(open_ledger(20), "plg_a", 3), "plg_b", 4)
    (event,) = restate_pledge(ledger, "plg_b", NOW).events
    assert (event.pledge.pledge_id, event.pledge.quantity) == ("plg_b", 4)
    assert restate_pledge(ledger, "plg_gone", NOW).noop


def test_the_digest_ignores_the_version_and_sees_every_public_fact() -> None:
    ledger, pledge = in_status(PledgeStatus.CONFIRMED)
    public = pledge_public(ledger, pledge)
    assert pledge_state_digest(public) == pledge_state_digest(public.model_copy(update={"version": 9}))
    for changed in ({"quantity": public.quantity + 1}, {"status": PledgeStatus.CANCELLED}, {"donor_id": "other"}):
        assert pledge_state_digest(public.model_copy(update=changed)) != pledge_state_digest(public)
    created = PledgeCreated(pledge=public, occurred_at=NOW)
    assert created.state_digest is None and not created.restated, "changes carry no digest: consumers compute it"
    assert created.pledge_digest() == pledge_state_digest(public)
