"""Who may read a recipient's contact person through a pledge, and until when (pure).

As in Jakarta's programme, a donor who commits receives the location's contact and is expected to call
within 2×24 hours. Only the donor who made the pledge reads it — nobody else, admins included — and
only while the pledge is live, or for a limited time after its delivery: under data minimisation
(UU 27/2022) access ends a configurable number of days after the delivery (14 by default). A cancelled,
rejected or expired pledge (one left unconfirmed for the 48 h confirmation window expires) no longer
opens the contact at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ksbb_contracts.vocab import PledgeStatus

from ksbb_pledges.domain.errors import ContactAccessEnded, NotPermitted, PledgeNotLive
from ksbb_pledges.domain.lifecycle import DELIVERED, LIVE, Actor

#: The donor is asked to contact the location within this many hours (2×24 h).
CONTACT_WITHIN_HOURS = 48
#: Pledge states in which the pledging donor may read the contact.
CONTACT_OPEN = LIVE | {DELIVERED}
#: How long after the delivery the donor may still read the contact, unless configured otherwise.
DEFAULT_ACCESS_AFTER_DELIVERY = timedelta(days=14)


def contact_access_ends(status: PledgeStatus | str, delivered_at: datetime | None, after_delivery: timedelta) -> (
    datetime | None
):
    """When the donor's access ends: a set time after the delivery; None while the pledge is live."""
    if PledgeStatus(status) is not DELIVERED or delivered_at is None:
        return None
    moment = delivered_at if delivered_at.tzinfo is not None else delivered_at.replace(tzinfo=UTC)
    return moment + after_delivery


def check_contact_visible(
    actors: Iterable[Actor],
    status: PledgeStatus | str,
    *,
    delivered_at: datetime | None = None,
    now: datetime | None = None,
    after_delivery: timedelta = DEFAULT_ACCESS_AFTER_DELIVERY,
) -> datetime | None:
    """Refuse unless the caller is the pledging donor (NotPermitted), the pledge still counts (PledgeNotLive)
    and a delivery is recent enough (ContactAccessEnded); returns when the access ends (None: while live)."""
    if Actor.DONOR not in set(actors):
        raise NotPermitted("only the donor who made this pledge may read the contact")
    if PledgeStatus(status) not in CONTACT_OPEN:
        raise PledgeNotLive(str(status))
    ends = contact_access_ends(status, delivered_at, after_delivery)
    if ends is not None and now is not None and now >= ends:
        raise ContactAccessEnded(ends)
    return ends
