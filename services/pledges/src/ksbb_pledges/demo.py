"""`make run` demo: donors, pledges in each lifecycle state and one matched offer, through the HTTP API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
from ksbb_kit.demo import DemoContext

DONORS = [
    ("demo-donor-sumber-berkah", "company", "PT Sumber Berkah", True),
    ("demo-donor-al-ikhlas", "mosque", "Masjid Al-Ikhlas", True),
    ("demo-donor-komunitas", "community", "Komunitas Berbagi Jakarta", True),
    ("demo-donor-anon-1", "person", "Hamba Allah", False),
    ("demo-donor-anon-2", "person", "Donatur", False),
]
#: The lifecycle path each demo pledge is walked along (the last state is where it stays).
PATHS = [
    ["pledged"],
    ["confirmed"],
    ["confirmed", "dispatched"],
    ["confirmed", "dispatched", "delivered"],
    ["confirmed", "dispatched", "delivered_partial"],
    ["cancelled"],
    ["rejected"],
    ["confirmed", "dispatched", "delivered"],
]


def _needs(state: dict[str, Any]) -> list[dict[str, Any]]:
    registry = state.get("registry") or {}
    found = registry.get("need_details") or registry.get("needs") or []
    return [n for n in found if isinstance(n, dict) and {"need_id", "recipient_id", "organisation_id"} <= set(n)]


async def seed(ctx: DemoContext) -> None:
    """Create demo donors, pledges in each state and an accepted offer; ids go to ctx.state['pledges']."""
    needs = _needs(ctx.state)
    ctx.state["pledges"] = {"pledges": [], "donors": [], "offers": []}
    if not needs:
        print("  pledges: no registry needs in the demo state; skipped", flush=True)
        return
    needs = needs[:16]
    async with ctx.client("pledges") as public:

        async def ledger(need_id: str) -> dict[str, Any] | None:
            response = await public.get(f"/v1/needs/{need_id}/ledger")
            return response.json() if response.status_code == 200 else None

        async def all_known() -> bool:
            return all([await ledger(n["need_id"]) for n in needs])

        await ctx.eventually(all_known, timeout=120, what="the registry's needs in the pledges ledger")
        for subject, kind, name, show in DONORS:
            async with ctx.client("pledges", "donor", subject=subject) as donor:
                profile = await donor.put(
                    "/v1/donors/me",
                    json={
                        "kind": kind,
                        "display_name": name,
                        "show_name": show,
                        "contact": {"name": name, "email": f"{subject}@contoh.id"},
                    },
                )
                profile.raise_for_status()
                ctx.state["pledges"]["donors"].append(profile.json()["donor_id"])

        planned = (date.today() + timedelta(days=2)).isoformat()
        counts: dict[str, int] = {}
        for index, path in enumerate(PATHS):
            need = needs[index % len(needs)]
            current = await ledger(need["need_id"])
            if not current:
                continue
            subject = DONORS[index % len(DONORS)][0]
            # From the requested quantity, not the remaining one: a re-run then repeats the same request.
            quantity = max(1, min(current["requested"] // 8, 20))
            pledge_id = await _walk(ctx, need, subject, quantity, planned, path, f"demo-pledge-{index}")
            if pledge_id:
                ctx.state["pledges"]["pledges"].append(pledge_id)
                counts[path[-1]] = counts.get(path[-1], 0) + 1

        open_ledgers = [found for n in needs if (found := await ledger(n["need_id"])) and found["remaining"] > 0]
        if open_ledgers:
            item = open_ledgers[0]["item"]
            async with ctx.client("pledges", "donor", subject="demo-donor-al-ikhlas") as donor:
                offer = await donor.post(
                    "/v1/offers",
                    headers={"Idempotency-Key": "demo-offer-1"},
                    json={
                        "item": item,
                        "quantity": 30,
                        "available_until": (date.today() + timedelta(days=7)).isoformat(),
                    },
                )
                offer.raise_for_status()
                offer_id = offer.json()["offer_id"]
                if offer.json()["status"] == "proposed":
                    accepted = await donor.post(f"/v1/offers/{offer_id}/accept")
                    if accepted.status_code == 200:
                        ctx.state["pledges"]["pledges"].extend(accepted.json()["pledge_ids"])
                ctx.state["pledges"]["offers"].append(offer_id)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    print(
        f"  pledges: {len(DONORS)} donors, {summary}, {len(ctx.state['pledges']['offers'])} offer matched "
        f"(expiry needs real waiting time, so no expired pledge in the demo)",
        flush=True,
    )


async def _walk(
    ctx: DemoContext,
    need: dict[str, Any],
    subject: str,
    quantity: int,
    planned: str,
    path: list[str],
    key: str,
) -> str | None:
    """Create one pledge (idempotently) and move it along a lifecycle path; re-runs skip done steps."""
    async with (
        ctx.client("pledges", "donor", subject=subject) as donor,
        ctx.client("pledges", "facilitator", org_id=need["organisation_id"]) as facilitator,
    ):
        created = await donor.post(
            "/v1/pledges",
            headers={"Idempotency-Key": key},
            json={
                "need_id": need["need_id"],
                "quantity": quantity,
                "planned_date": planned,
                "mode": "own_delivery",
            },
        )
        if created.status_code not in (200, 201):
            return None
        pledge_id = str(created.json()["pledge_id"])
        steps: dict[str, tuple[httpx.AsyncClient, str, dict[str, Any] | None]] = {
            "confirmed": (facilitator, "confirm", None),
            "dispatched": (donor, "dispatch", None),
            "delivered": (
                facilitator,
                "deliver",
                {"received_quantity": quantity, "proof_ref": "foto-serah-terima"},
            ),
            "delivered_partial": (facilitator, "deliver", {"received_quantity": max(quantity - 1, 0)}),
            "cancelled": (donor, "cancel", {"reason": "jadwal berubah"}),
            "rejected": (facilitator, "reject", {"reason": "jenis bantuan tidak sesuai kebutuhan"}),
        }
        for state in path:
            if state == "pledged":
                continue
            client, action, body = steps[state]
            response = await client.post(f"/v1/pledges/{pledge_id}/{action}", json=body)
            if response.status_code not in (200, 409):  # 409: done by an earlier run of the seed
                response.raise_for_status()
        return pledge_id
