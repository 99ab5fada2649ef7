"""Views repaired from their owner's state: a metric per view and one log line per aggregate.

A consumer that receives an owner's event at a version it already holds, but with other figures (the owner
lost writes in a crash and reused the version), or a `restated` state that differs from its view, applies
it — the owner is authoritative — and says so here.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from prometheus_client import Counter

log = logging.getLogger(__name__)

VIEW_REPAIRS = Counter(
    "ksbb_view_repairs_total",
    "Consumer views overwritten by their owner's state although they held its version (divergence repaired)",
    ["view", "reason"],
)
#: Aggregates whose repair was logged already (per process); beyond this the oldest are forgotten.
LOGGED_KEEP = 10_000
_logged: OrderedDict[tuple[str, str], None] = OrderedDict()


def note_repair(view: str, aggregate_id: str, reason: str) -> None:
    """Count a repaired view; log it the first time this process repairs this aggregate in this view."""
    VIEW_REPAIRS.labels(view=view, reason=reason).inc()
    key = (view, aggregate_id)
    if key in _logged:
        return
    _logged[key] = None
    while len(_logged) > LOGGED_KEEP:
        _logged.popitem(last=False)
    log.warning("view %s of %s diverged from its owner and was repaired (%s)", view, aggregate_id, reason)
