"""Who may read a recipient's contact person through a pledge, and when (pure).

As in Jakarta's programme, a donor who commits receives the location's contact and is expected to call
within 2×24 hours. Only the donor who made the pledge reads it — nobody else, admins included — and
only while the pledge is live or delivered: a cancelled, rejected or expired pledge (one left
unconfirmed for the 48 h confirmation window expires) no longer opens the contact.
"""

from __future__ import annotations

from collections.abc import Iterable

from ksbb_contracts.vocab import PledgeStatus

from ksbb_pledges.domain.errors import NotPermitted, PledgeNotLive
from ksbb_pledges.domain.lifecycle import DELIVERED, LIVE, Actor

#: The donor is asked to contact the location within this many hours (2×24 h).
CONTACT_WITHIN_HOURS = 48
#: Pledge states in which the pledging donor may read the contact.
CONTACT_OPEN = LIVE | {DELIVERED}


def check_contact_visible(actors: Iterable[Actor], status: PledgeStatus | str) -> None:
    """Refuse unless the caller is the pledging donor (NotPermitted) and the pledge still counts (PledgeNotLive)."""
    if Actor.DONOR not in set(actors):
        raise NotPermitted("only the donor who made this pledge may read the contact")
    if PledgeStatus(status) not in CONTACT_OPEN:
        raise PledgeNotLive(str(status))
