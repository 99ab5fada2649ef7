"""Anti-entropy (pure): re-announcing a need's, recipient's or organisation's current public state so every
view repairs.

A restatement is not a change: the aggregate keeps its version and content; the event (`restated`, with
the state's digest) lets a consumer whose view differs — a crash that lost acknowledged writes, a bug, a
manual edit — replace it, whatever version it holds.
"""

from __future__ import annotations

from ksbb_contracts.events.registry import NeedChanged, OrganisationUpdated, RecipientUpdated, public_state_digest

from ksbb_registry.domain import needs, organisations, recipients
from ksbb_registry.domain.needs import Need
from ksbb_registry.domain.organisations import Organisation
from ksbb_registry.domain.recipients import Recipient


def need_restatement(need: Need) -> NeedChanged:
    """The need's current public state as a `restated` event, dated at its last change."""
    snapshot = needs.public(need)
    return NeedChanged(
        need=snapshot, occurred_at=need.updated_at, state_digest=public_state_digest(snapshot), restated=True
    )


def recipient_restatement(recipient: Recipient) -> RecipientUpdated:
    """The recipient's current public state as a `restated` event, dated at its last change."""
    snapshot = recipients.public(recipient)
    return RecipientUpdated(
        recipient=snapshot,
        occurred_at=recipient.updated_at,
        state_digest=public_state_digest(snapshot),
        restated=True,
    )


def organisation_restatement(organisation: Organisation) -> OrganisationUpdated:
    """The organisation's current public state as a `restated` event."""
    snapshot = organisations.public(organisation)
    return OrganisationUpdated(organisation=snapshot, state_digest=public_state_digest(snapshot), restated=True)
