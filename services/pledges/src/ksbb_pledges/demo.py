"""`make run` demo: ~150 pledges from a dozen donors across Jakarta's open needs, in every state, via the HTTP API."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx
from ksbb_contracts.areas import UnknownArea, areas
from ksbb_kit.demo import DemoContext
from ksbb_kit.ids import derived_id

T = TypeVar("T")

#: Fixed so that every `make run` plans the same pledges (and a re-run only replays them).
RANDOM_SEED = 20260302
#: Requests in flight at once: enough to finish in seconds, gentle on a shared 2-core machine.
BATCH = 10
#: Pledges per open need (~150 on the registry seed's ~369 needs); the rest stay as coverage gaps.
PLEDGES_PER_NEED = 0.41
MAX_PLEDGES = 150
#: Share of the pledged needs that a second donor also pledges to.
SECOND_DONOR_SHARE = 0.12


@dataclass(frozen=True)
class Donor:
    """A demo donor: token subject, public profile and how often it gives."""

    subject: str
    kind: str
    name: str
    show_name: bool
    weight: int


DONORS = [
    Donor("demo-donor-sumber-berkah", "company", "PT Sumber Berkah", True, 14),
    Donor("demo-donor-pangan-nusantara", "company", "PT Pangan Nusantara Sejahtera", True, 11),
    Donor("demo-donor-bank-sembako", "company", "CV Bina Usaha Mandiri", True, 6),
    Donor("demo-donor-al-ikhlas", "mosque", "Masjid Al-Ikhlas", True, 10),
    Donor("demo-donor-jami-annur", "mosque", "Masjid Jami' An-Nur Kebon Jeruk", True, 8),
    Donor("demo-donor-komunitas", "community", "Komunitas Berbagi Jakarta", True, 10),
    Donor("demo-donor-relawan-kampung", "community", "Relawan Kampung Sehat", True, 7),
    Donor("demo-donor-gereja-kasih", "church", "Gereja Kasih Karunia", True, 5),
    Donor("demo-donor-ibu-ratna", "person", "Ibu Ratna Wulandari", True, 4),
    Donor("demo-donor-anon-1", "person", "Hamba Allah", False, 9),
    Donor("demo-donor-anon-2", "person", "Donatur", False, 8),
    Donor("demo-donor-anon-3", "person", "Sahabat Peduli", False, 6),
]
#: Relative weight of each final state; "delivered_partial" is a delivery of less than pledged.
STATE_WEIGHTS = {
    "delivered": 42,
    "delivered_partial": 10,
    "dispatched": 15,
    "confirmed": 13,
    "pledged": 12,
    "cancelled": 5,
    "rejected": 3,
}
#: The actions that walk a new pledge to each final state, and the status each action leads to.
PATHS = {
    "pledged": [],
    "confirmed": ["confirm"],
    "dispatched": ["confirm", "dispatch"],
    "delivered": ["confirm", "dispatch", "deliver"],
    "delivered_partial": ["confirm", "dispatch", "deliver"],
    "cancelled": ["cancel"],
    "rejected": ["reject"],
}
STATUS_AFTER = {
    "confirm": "confirmed",
    "dispatch": "dispatched",
    "deliver": "delivered",
    "cancel": "cancelled",
    "reject": "rejected",
}
CANCEL_REASONS = ["jadwal berubah", "armada pengiriman tidak tersedia", "stok barang habis"]
REJECT_REASONS = ["jenis bantuan tidak sesuai kebutuhan", "kebutuhan sudah dipenuhi dari sumber lain"]


@dataclass(frozen=True)
class PlannedPledge:
    """One pledge the demo makes: to which need, from whom, what share of the request and where it ends."""

    need: dict[str, Any]
    slot: int
    donor: Donor
    share: float
    state: str

    @property
    def key(self) -> str:
        """The Idempotency-Key: per need and slot, so a re-run replays instead of pledging again."""
        return f"demo-pledge-{self.need['need_id']}-{self.slot}"


def _needs(state: dict[str, Any]) -> list[dict[str, Any]]:
    registry = state.get("registry") or {}
    found = registry.get("need_details") or registry.get("needs") or []
    return [n for n in found if isinstance(n, dict) and {"need_id", "recipient_id", "organisation_id"} <= set(n)]


def plan(needs: list[dict[str, Any]]) -> list[PlannedPledge]:
    """A deterministic spread of pledges over the needs, with every final state at least once."""
    rng = random.Random(RANDOM_SEED)
    # A single unit cannot be split without fulfilling the need (which would change the registry's list).
    eligible = [n for n in needs if int(n.get("quantity") or 2) >= 2]
    if not eligible:
        return []
    target = min(MAX_PLEDGES, max(len(STATE_WEIGHTS), round(len(eligible) * PLEDGES_PER_NEED)))
    pledged_needs = min(len(eligible), max(1, round(target / (1 + SECOND_DONOR_SHARE))))
    chosen = rng.sample(eligible, pledged_needs)
    states = _states(target, rng)
    weights = [d.weight for d in DONORS]
    planned = []
    for index, state in enumerate(states):
        need = chosen[index % len(chosen)]
        slot = index // len(chosen)
        donor = rng.choices(DONORS, weights)[0]
        # Two pledges on one need stay below the request together: the need keeps taking pledges.
        planned.append(PlannedPledge(need, slot, donor, round(rng.uniform(0.15, 0.45), 2), state))
    return planned


def _states(count: int, rng: random.Random) -> list[str]:
    """`count` final states in proportion to STATE_WEIGHTS, each at least once, shuffled."""
    total = sum(STATE_WEIGHTS.values())
    states = [state for state in STATE_WEIGHTS for _ in range(max(1, round(count * STATE_WEIGHTS[state] / total)))]
    while len(states) > count:  # rounding up the rare states may overshoot: trim the most common one
        states.remove("delivered")
    states += ["delivered"] * (count - len(states))
    rng.shuffle(states)
    return states


async def _batched(calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run coroutine factories BATCH at a time, results in order."""
    pending = list(calls)
    results: list[T] = []
    for start in range(0, len(pending), BATCH):
        results += await asyncio.gather(*(call() for call in pending[start : start + BATCH]))
    return results


class Clients:
    """One authenticated HTTP client per donor and per facilitator organisation, closed together."""

    def __init__(self, ctx: DemoContext, stack: AsyncExitStack) -> None:
        self.ctx, self.stack = ctx, stack
        self.cache: dict[tuple[str, str], httpx.AsyncClient] = {}

    async def get(self, role: str, **claims: str) -> httpx.AsyncClient:
        """The client of a role and its claims (subject= for donors, org_id= for facilitators)."""
        key = (role, next(iter(claims.values()), ""))
        if key not in self.cache:  # no await before storing it: concurrent callers share one client
            self.cache[key] = self.ctx.client("pledges", role, **claims)
            self.stack.push_async_callback(self.cache[key].aclose)
        return self.cache[key]


async def seed(ctx: DemoContext) -> None:
    """Create demo donors, ~150 spread-out pledges in every state and an accepted offer (ids in ctx.state)."""
    needs = _needs(ctx.state)
    result: dict[str, Any] = {"pledges": [], "donors": [], "offers": [], "counts": {}, "kota": 0, "kecamatan": 0}
    ctx.state["pledges"] = result
    if not needs:
        print("  pledges: no registry needs in the demo state; skipped", flush=True)
        return
    started = time.monotonic()
    planned = plan(needs)
    async with AsyncExitStack() as stack:
        clients = Clients(ctx, stack)
        public = await stack.enter_async_context(ctx.client("pledges"))
        ledgers = await _wait_for_ledgers(ctx, public, [p.need["need_id"] for p in planned])
        result["donors"] = await _batched(partial(_profile, clients, donor) for donor in DONORS)
        planned_date = (date.today() + timedelta(days=2)).isoformat()
        quantities = _quantities(planned, ledgers)
        walks = [
            partial(_walk, clients, pledge, quantity, planned_date)
            for pledge, quantity in zip(planned, quantities, strict=True)
            if quantity
        ]
        walked: list[dict[str, Any] | None] = []
        with ctx.progress("  pledges: pledges and their lifecycles", len(walks), unit="pledges") as progress:
            for start in range(0, len(walks), BATCH):
                walked += await _batched(walks[start : start + BATCH])
                progress.advance(len(walks[start : start + BATCH]))
        counts: Counter[str] = Counter()
        places: set[tuple[str, str]] = set()
        for pledge in filter(None, walked):
            result["pledges"].append(pledge["pledge_id"])
            counts[_final_state(pledge)] += 1
            places.add(_area_of(ledgers[pledge["need_id"]]["kelurahan_code"]))
        result["counts"] = dict(sorted(counts.items()))
        result["kota"] = len({kota for kota, _ in places})
        result["kecamatan"] = len({kecamatan for _, kecamatan in places})
        await _offer(clients, public, needs, {p.need["need_id"] for p in planned}, result)
    summary = ", ".join(f"{n} {state}" for state, n in result["counts"].items())
    pledged_needs = len({p.need["need_id"] for p in planned})
    print(
        f"  pledges: {len(DONORS)} donors, {sum(counts.values())} pledges on {pledged_needs} of {len(needs)} needs "
        f"in {result['kota']} kota / {result['kecamatan']} kecamatan ({summary}), "
        f"{len(result['offers'])} offer matched (no expired pledge: expiry needs real waiting time) "
        f"in {time.monotonic() - started:.0f} s",
        flush=True,
    )


async def _wait_for_ledgers(
    ctx: DemoContext, public: httpx.AsyncClient, need_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """The ledgers of the given needs, once the registry's events have reached the pledges service."""
    known: dict[str, dict[str, Any]] = {}

    async def fetch(need_id: str) -> None:
        response = await public.get(f"/v1/needs/{need_id}/ledger")
        if response.status_code == 200:
            known[need_id] = response.json()

    async def all_known() -> bool:
        await _batched(partial(fetch, n) for n in dict.fromkeys(need_ids) if n not in known)
        return len(known) == len(set(need_ids))

    await ctx.eventually(all_known, timeout=120, what="the registry's needs in the pledges ledger")
    return known


def _quantities(planned: list[PlannedPledge], ledgers: dict[str, dict[str, Any]]) -> list[int]:
    """Each pledge's quantity: its share of the request (not of what remains, so a re-run asks the same)."""
    left = {need_id: ledger["requested"] - 1 for need_id, ledger in ledgers.items()}
    quantities = []
    for pledge in planned:
        need_id = pledge.need["need_id"]
        wanted = max(1, int(ledgers[need_id]["requested"] * pledge.share))
        quantity = min(wanted, left[need_id])
        left[need_id] -= max(quantity, 0)
        quantities.append(max(quantity, 0))
    return quantities


async def _profile(clients: Clients, donor: Donor) -> str:
    """Create or update one donor's profile (PUT is idempotent); its public donor id."""
    client = await clients.get("donor", subject=donor.subject)
    profile = await client.put(
        "/v1/donors/me",
        json={
            "kind": donor.kind,
            "display_name": donor.name,
            "show_name": donor.show_name,
            "contact": {"name": donor.name, "email": f"{donor.subject}@contoh.id"},
        },
    )
    profile.raise_for_status()
    return str(profile.json()["donor_id"])


async def _walk(clients: Clients, pledge: PlannedPledge, quantity: int, planned_date: str) -> dict[str, Any] | None:
    """Create one pledge (idempotently) and move it to its final state; a re-run skips the steps done."""
    donor = await clients.get("donor", subject=pledge.donor.subject)
    facilitator = await clients.get("facilitator", org_id=pledge.need["organisation_id"])
    created = await donor.post(
        "/v1/pledges",
        headers={"Idempotency-Key": pledge.key},
        json={
            "need_id": pledge.need["need_id"],
            "quantity": quantity,
            "planned_date": planned_date,
            "mode": "own_delivery",
        },
    )
    if created.status_code in (200, 201):
        current = created.json()
    elif created.status_code == 422 and created.json().get("code") == "idempotency_key_reused":
        # Made by a `make run` on an earlier day (another planned date): continue with that pledge.
        found = await donor.get(f"/v1/pledges/{derived_id('plg', pledge.donor.subject, pledge.key)}")
        if found.status_code != 200:
            return None
        current = found.json()
    else:  # e.g. the need closed or was pledged by hand meanwhile: leave it be
        return None
    actions = PATHS[pledge.state]
    reached = [STATUS_AFTER[a] for a in actions]
    todo = actions[reached.index(current["status"]) + 1 :] if current["status"] in reached else actions
    if current["status"] != "pledged" and current["status"] not in reached:
        todo = []  # ended elsewhere (e.g. expired): nothing more to do
    partly = pledge.state == "delivered_partial" and quantity >= 2
    delivered = quantity - max(1, quantity // 4) if partly else quantity
    bodies: dict[str, dict[str, Any] | None] = {
        "confirm": None,
        "dispatch": None,
        "deliver": {"received_quantity": delivered, "proof_ref": f"foto-serah-terima-{pledge.key[-8:]}"},
        "cancel": {"reason": CANCEL_REASONS[pledge.slot % len(CANCEL_REASONS)]},
        "reject": {"reason": REJECT_REASONS[len(pledge.need["need_id"]) % len(REJECT_REASONS)]},
    }
    for action in todo:
        client = donor if action in ("dispatch", "cancel") else facilitator
        response = await client.post(f"/v1/pledges/{current['pledge_id']}/{action}", json=bodies[action])
        if response.status_code == 409:  # moved on meanwhile (e.g. by hand): keep what it is
            break
        response.raise_for_status()
        current = response.json()
    return current


def _final_state(pledge: dict[str, Any]) -> str:
    """The pledge's status, telling a partial delivery apart."""
    delivered = pledge.get("delivered_quantity")
    if pledge["status"] == "delivered" and delivered is not None and delivered < pledge["quantity"]:
        return "delivered_partial"
    return str(pledge["status"])


def _area_of(kelurahan_code: str) -> tuple[str, str]:
    """(kota, kecamatan) codes of a kelurahan; unknown codes count as their own area."""
    try:
        return areas().kota_of(kelurahan_code).code, areas().kecamatan_of(kelurahan_code).code
    except UnknownArea:
        return kelurahan_code, kelurahan_code


async def _offer(
    clients: Clients,
    public: httpx.AsyncClient,
    needs: list[dict[str, Any]],
    pledged: set[str],
    result: dict[str, Any],
) -> None:
    """One donor offer matched to open needs by the engine and accepted (its pledges stay 'pledged')."""
    item = None
    for need in [n for n in needs if n["need_id"] not in pledged] + needs:
        response = await public.get(f"/v1/needs/{need['need_id']}/ledger")
        if response.status_code == 200 and response.json()["remaining"] > 0:
            item = response.json()["item"]
            break
    if item is None:
        return
    donor_subject = "demo-donor-al-ikhlas"
    donor = await clients.get("donor", subject=donor_subject)
    key = "demo-offer-1"
    offer = await donor.post(
        "/v1/offers",
        headers={"Idempotency-Key": key},
        json={"item": item, "quantity": 30, "available_until": (date.today() + timedelta(days=7)).isoformat()},
    )
    if offer.status_code == 422 and offer.json().get("code") == "idempotency_key_reused":
        offer = await donor.get(f"/v1/offers/{derived_id('ofr', donor_subject, key)}")  # an earlier day's offer
    offer.raise_for_status()
    found = offer.json()
    if found["status"] == "proposed":
        accepted = await donor.post(f"/v1/offers/{found['offer_id']}/accept")
        if accepted.status_code == 200:
            found = accepted.json()
    result["pledges"].extend(found.get("pledge_ids") or [])
    result["offers"].append(found["offer_id"])
