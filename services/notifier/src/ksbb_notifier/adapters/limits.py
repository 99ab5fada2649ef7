"""Delivery limits kept in this instance's memory: concurrency slots and per-endpoint rate pacing.

Each notifier instance enforces them on its own; limits shared across replicas would implement the
same ports on a shared store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from ksbb_notifier.domain.deliveries import DueDelivery, pace, pick_within_limits


class LocalSlots:
    """Counts this instance's attempts in flight, overall and per endpoint."""

    def __init__(self, *, per_endpoint: int, total: int) -> None:
        self._per_endpoint = per_endpoint
        self._total = total
        self._in_flight: dict[str, int] = defaultdict(int)
        self._in_flight_total = 0

    def room(self) -> int:
        """How many more attempts may start now."""
        return self._total - self._in_flight_total

    def saturated(self) -> list[str]:
        """Endpoints without a free slot."""
        return [e for e, n in self._in_flight.items() if n >= self._per_endpoint]

    def pick(self, candidates: Sequence[DueDelivery], room: int) -> list[str]:
        """Which due deliveries to lease within the limits."""
        return pick_within_limits(candidates, self._in_flight, self._per_endpoint, room)

    def take(self, endpoint_id: str) -> None:
        """An attempt for this endpoint started."""
        self._in_flight[endpoint_id] += 1
        self._in_flight_total += 1

    def release(self, endpoint_id: str) -> None:
        """An attempt for this endpoint ended."""
        self._in_flight[endpoint_id] -= 1
        if self._in_flight[endpoint_id] <= 0:
            del self._in_flight[endpoint_id]
        self._in_flight_total -= 1


class LocalRateGate:
    """Spaces each endpoint's attempts by its rate limit, as seen by this instance."""

    def __init__(self) -> None:
        self._next_free: dict[str, datetime] = {}

    async def admit(self, endpoint_id: str, rate_per_second: float, now: datetime) -> datetime | None:
        """None if an attempt may go now (its slot is taken); otherwise when to try again."""
        decision = pace(self._next_free.get(endpoint_id), now, rate_per_second)
        if not decision.send_now:
            return decision.next_free
        self._next_free[endpoint_id] = decision.next_free
        return None
