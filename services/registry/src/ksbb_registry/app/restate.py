"""Anti-entropy for needs, recipients and organisations: re-publish each one's current public state, a page
per run.

Consumers (the publisher's read models, the pledges service's and the notifier's replicas) apply a `restated`
event whenever their view differs, so any view that diverged is repaired within one full pass. The pages, the
cursor and the item isolation are the kit's `RestatePass`; this module says what restating one need, recipient
or organisation means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ksbb_contracts import Event
from ksbb_kit.jobs import StuckItems
from ksbb_kit.restate_pages import RestateOne, RestatePass

from ksbb_registry.app.ports import AggregateStore, RestatePages
from ksbb_registry.domain.restate import need_restatement, organisation_restatement, recipient_restatement

NEEDS_JOB = "need-restate"
RECIPIENTS_JOB = "recipient-restate"
ORGANISATIONS_JOB = "organisation-restate"


def restating(store: AggregateStore[Any], announce: Callable[[Any], Event]) -> RestateOne:
    """Restate one aggregate of `store` (in order with its changes, `restated` at its current version)."""

    async def restate(aggregate_id: str) -> bool:
        return await store.restate(aggregate_id, announce)

    return restate


def need_restatement_job(
    store: AggregateStore[Any], pages: RestatePages, *, page_size: int, stuck: StuckItems | None = None
) -> RestatePass:
    """The anti-entropy job of needs (`ksbb.need.changed.v1`, restated)."""
    return RestatePass(pages, restating(store, need_restatement), job=NEEDS_JOB, page_size=page_size, stuck=stuck)


def recipient_restatement_job(
    store: AggregateStore[Any], pages: RestatePages, *, page_size: int, stuck: StuckItems | None = None
) -> RestatePass:
    """The anti-entropy job of recipients (`ksbb.recipient.updated.v1`, restated)."""
    return RestatePass(
        pages, restating(store, recipient_restatement), job=RECIPIENTS_JOB, page_size=page_size, stuck=stuck
    )


def organisation_restatement_job(
    store: AggregateStore[Any], pages: RestatePages, *, page_size: int, stuck: StuckItems | None = None
) -> RestatePass:
    """The anti-entropy job of organisations (`ksbb.organisation.updated.v1`, restated)."""
    return RestatePass(
        pages, restating(store, organisation_restatement), job=ORGANISATIONS_JOB, page_size=page_size, stuck=stuck
    )
