"""A restatement re-announces a need's or recipient's current public state, unchanged, with its digest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts.events.registry import NeedChanged, RecipientUpdated, public_state_digest
from ksbb_contracts.vocab import NeedStatus, RecipientStatus
from ksbb_registry.domain import needs, recipients
from ksbb_registry.domain.restate import need_restatement, recipient_restatement

from .builders import NOW, need, recipient

pytestmark = pytest.mark.unit


@given(status=st.sampled_from(list(NeedStatus)), quantity=st.integers(1, 500), version=st.integers(1, 50))
def test_a_need_restatement_carries_its_current_public_state_version_and_digest(
    status: NeedStatus, quantity: int, version: int
) -> None:
    current = need(status, quantity=quantity, version=version)
    event = need_restatement(current)
    assert isinstance(event, NeedChanged) and event.restated
    assert event.need == needs.public(current) and event.need.version == version
    assert event.state_digest == event.need_digest() == public_state_digest(needs.public(current))
    assert event.occurred_at == current.updated_at == NOW  # dated at its last change, not at the job's run


@given(status=st.sampled_from(list(RecipientStatus)), households=st.integers(0, 900))
def test_a_recipient_restatement_never_carries_the_contact_and_digests_only_public_facts(
    status: RecipientStatus, households: int
) -> None:
    current = recipient(status)
    current = current.model_copy(
        update={"beneficiaries": current.beneficiaries.model_copy(update={"households": households})}
    )
    event = recipient_restatement(current)
    assert isinstance(event, RecipientUpdated) and event.restated
    assert event.recipient == recipients.public(current)
    assert "contact" not in event.model_dump() and "Ibu Sari" not in event.model_dump_json()
    assert event.state_digest == event.recipient_digest()
    # The digest follows the public state only: a private change (the contact) leaves it, a public one not.
    private = recipient_restatement(current.model_copy(update={"notes": "catatan"}))
    public = recipient_restatement(current.model_copy(update={"name": "RW 06 Gambir"}))
    assert private.state_digest == event.state_digest != public.state_digest
