"""Fair matching of an offer across open needs: deterministic order, anti-stacking, splitting (pure).

Allocation order (first key decides, later keys break ties):
1. priority: high, medium, low;
2. needed-by date: earliest first;
3. anti-stacking, least recently received: recipients that never received come first, then the one
   whose last delivery is oldest;
4. anti-stacking, least received per beneficiary household so far;
5. unmet share: the larger the remaining share of the need (remaining / requested), the earlier;
6. proximity to the offer's preferred area: a need inside a preferred kecamatan before one only
   inside a preferred kota;
7. need id (a stable tiebreak, so any input order gives the same result).
The offer is then poured greedily in that order, each need taking at most its remaining quantity, so
an offer a single need cannot absorb is split across several. Complexity O(n log n) per offer.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from ksbb_contracts.vocab import Priority

PRIORITY_RANK = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}


@dataclass(frozen=True)
class NeedCandidate:
    """What the engine knows about one open need of the offered item."""

    need_id: str
    recipient_id: str
    requested: int
    remaining: int
    priority: Priority
    needed_by: date
    kelurahan_code: str
    households: int = 1
    last_received_at: datetime | None = None
    received_total: int = 0


@dataclass(frozen=True)
class Allocation:
    """A quantity of the offer proposed for one need."""

    need_id: str
    recipient_id: str
    quantity: int


def proximity_tier(kelurahan_code: str, area_codes: Sequence[str]) -> int | None:
    """0 inside a preferred kecamatan (or no preference), 1 inside a preferred kota, None outside."""
    if not area_codes:
        return 0
    best: int | None = None
    for code in area_codes:
        if kelurahan_code == code or kelurahan_code.startswith(code + "."):
            # Kota codes have two dots fewer than kelurahan codes; kecamatan codes one.
            tier = 1 if code.count(".") <= 1 else 0
            best = tier if best is None else min(best, tier)
    return best


def allocation_key(need: NeedCandidate, tier: int) -> tuple[object, ...]:
    """The sort key implementing the documented allocation order."""
    never_received = need.last_received_at is None
    last = need.last_received_at.timestamp() if need.last_received_at is not None else 0.0
    per_household = need.received_total / max(need.households, 1)
    unmet_share = need.remaining / need.requested if need.requested > 0 else 0.0
    return (
        PRIORITY_RANK[Priority(need.priority)],
        need.needed_by,
        0 if never_received else 1,
        last,
        per_household,
        -unmet_share,
        tier,
        need.need_id,
    )


def allocate(quantity: int, needs: Iterable[NeedCandidate], area_codes: Sequence[str] = ()) -> list[Allocation]:
    """Split an offer across needs in the documented order; never over remaining nor over offered."""
    ranked: list[tuple[tuple[object, ...], NeedCandidate]] = []
    for need in needs:
        tier = proximity_tier(need.kelurahan_code, area_codes)
        if need.remaining <= 0 or tier is None:
            continue
        # Every field takes part in the key, so even duplicated need ids sort the same in any input order.
        tiebreak = (
            need.recipient_id,
            need.remaining,
            need.requested,
            need.kelurahan_code,
            need.households,
            need.received_total,
        )
        ranked.append(((*allocation_key(need, tier), *tiebreak), need))
    ranked.sort(key=lambda pair: pair[0])
    seen: set[str] = set()
    unique = []
    for _, need in ranked:
        if need.need_id not in seen:  # one allocation per need
            seen.add(need.need_id)
            unique.append(need)
    left = max(quantity, 0)
    result: list[Allocation] = []
    for need in unique:
        if left == 0:
            break
        take = min(left, need.remaining)
        result.append(Allocation(need.need_id, need.recipient_id, take))
        left -= take
    return result


def fairness_spread(received_by_recipient: Mapping[str, int], households_by_recipient: Mapping[str, int]) -> float:
    """How evenly aid per household is spread across recipients: 1 − Gini coefficient, in [0, 1].

    1.0 means every recipient received the same per household; values near 0 mean the aid piled up in
    one place. Recipients listed in `households_by_recipient` that received nothing count as zeros.
    """
    recipients = sorted(set(households_by_recipient) | set(received_by_recipient))
    if not recipients:
        return 1.0
    coverage = sorted(received_by_recipient.get(r, 0) / max(households_by_recipient.get(r, 1), 1) for r in recipients)
    total = math.fsum(coverage)
    n = len(coverage)
    if total == 0 or n == 1:
        return 1.0
    # Gini from the sorted values: sum((2i - n - 1) * x_i) / (n * sum(x)).
    gini = math.fsum((2 * (i + 1) - n - 1) * x for i, x in enumerate(coverage)) / (n * total)
    return 1.0 - gini


def _kota_of(code: str) -> str | None:
    """The kota part of an area code (`31.71` of `31.71.01.1001`); None for the province itself."""
    parts = code.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else None


class Matcher:
    """Pours many offers in sequence over the same needs, keeping the needs ranked between offers.

    Gives exactly what calling `allocate` for each offer (and lowering the remaining quantities) gives,
    without re-ranking every need per offer: the needs are ranked once, O(n log n); an offer then walks
    the ranking (of its preferred kota only, when it has a preference) until it is placed, and only the
    needs it touched are re-ranked, O(log n) search + list shift each. Need ids must be unique.
    """

    def __init__(self, needs: Iterable[NeedCandidate]) -> None:
        self._needs: dict[str, NeedCandidate] = {}
        self._everywhere: list[tuple[object, ...]] = []
        self._by_kota: dict[str, list[tuple[object, ...]]] = {}
        for need in needs:
            if need.need_id in self._needs:
                raise ValueError(f"duplicate need id {need.need_id}")
            self._needs[need.need_id] = need
            if need.remaining > 0:
                self._everywhere.append(self._entry(need))
                self._by_kota.setdefault(_kota_of(need.kelurahan_code) or "", []).append(self._entry(need))
        self._everywhere.sort()
        for ranking in self._by_kota.values():
            ranking.sort()

    @staticmethod
    def _entry(need: NeedCandidate) -> tuple[object, ...]:
        # The allocation key without the proximity tier (it depends on the offer), then the need id.
        return (*allocation_key(need, 0)[:6], need.need_id)

    def remaining(self, need_id: str) -> int:
        """What a need still takes."""
        return self._needs[need_id].remaining

    def allocate(self, quantity: int, area_codes: Sequence[str] = ()) -> list[Allocation]:
        """Allocate one offer (as `allocate` would now) and lower the remaining quantities accordingly."""
        kotas = {_kota_of(code) for code in area_codes}
        if not area_codes or None in kotas:
            walk: Iterable[tuple[object, ...]] = self._everywhere
        else:
            walk = heapq.merge(*(self._by_kota.get(k or "", []) for k in sorted(k or "" for k in kotas)))
        left = max(quantity, 0)
        result: list[Allocation] = []
        if left == 0:
            return result
        for _, group in itertools.groupby(walk, key=lambda entry: entry[:6]):
            # Needs tied on every ranked criterion are ordered by proximity, then id, as in `allocate`.
            tied = []
            for entry in group:
                need = self._needs[str(entry[6])]
                tier = proximity_tier(need.kelurahan_code, area_codes)
                if tier is not None:
                    tied.append((tier, need.need_id, need))
            for _, _, need in sorted(tied, key=lambda t: (t[0], t[1])):
                take = min(left, need.remaining)
                result.append(Allocation(need.need_id, need.recipient_id, take))
                left -= take
                if left == 0:
                    break
            if left == 0:
                break
        for part in result:
            self._lower(part.need_id, part.quantity)
        return result

    def _lower(self, need_id: str, quantity: int) -> None:
        need = self._needs[need_id]
        updated = dataclasses.replace(need, remaining=need.remaining - quantity)
        self._needs[need_id] = updated
        kota = self._by_kota[_kota_of(need.kelurahan_code) or ""]
        for ranking in (self._everywhere, kota):
            old = self._entry(need)
            del ranking[bisect.bisect_left(ranking, old)]
            if updated.remaining > 0:
                bisect.insort(ranking, self._entry(updated))
