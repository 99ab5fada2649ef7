"""`make run` demo data: facilitator organisations, a few hundred recipients across Jakarta, and their needs.

Everything goes through the registry's HTTP API with real dev tokens. Idempotency keys make a re-run
return the same resources instead of creating new ones; the pseudo-random spread uses a fixed seed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from functools import partial
from typing import Any

import httpx
from ksbb_contracts.areas import areas
from ksbb_kit.demo import DemoContext

SEED = 2020
RECIPIENTS = 300
BATCH = 12

ORGANISATIONS = [
    {
        "name": "Baznas (Bazis) DKI Jakarta",
        "kind": "zakat",
        "kota": ["31.71", "31.73", "31.01"],
        "email": "kolaborasi@baznas-dki.example",
    },
    {"name": "PMI DKI Jakarta", "kind": "red_cross", "kota": ["31.75"], "email": "relawan@pmi-dki.example"},
    {
        "name": "Dompet Peduli Ummat",
        "kind": "ngo",
        "kota": ["31.72"],
        "email": "program@dompetpeduli.example",
    },
    {"name": "Aksi Sigap Kemanusiaan", "kind": "ngo", "kota": ["31.74"], "email": "posko@aksisigap.example"},
]
STREETS = [
    "Kenari",
    "Melati",
    "Mawar",
    "Cempaka",
    "Kamboja",
    "Flamboyan",
    "Anggrek",
    "Haji Naim",
    "Swadaya",
    "Masjid",
    "Kebon Jeruk",
    "Pintu Air",
    "Kali Baru",
    "Bhakti",
    "Manggis",
    "Rambutan",
]
NAMES = [
    "Al-Ikhlas",
    "Kasih Bunda",
    "Sejahtera",
    "Nurul Huda",
    "Harapan",
    "Bina Insani",
    "Darul Ulum",
    "Mutiara",
    "Tunas Bangsa",
    "Welas Asih",
    "Al-Falah",
    "Bhakti Luhur",
]
PEOPLE = ["Sari", "Budi", "Ani", "Rahmat", "Dewi", "Agus", "Lestari", "Yusuf", "Wulan", "Hendra"]


async def _retrying(
    call: Callable[[], Awaitable[httpx.Response]], ok: tuple[int, ...] = (200, 201, 409)
) -> httpx.Response:
    """Send a request, retrying transient failures; 409 means 'already done' on a re-run."""
    for attempt in range(5):
        try:
            response = await call()
        except httpx.TransportError:
            await asyncio.sleep(0.5 * (attempt + 1))
            continue
        if response.status_code in ok:
            return response
        if response.status_code < 500:
            raise RuntimeError(
                f"demo seed: {response.request.method} {response.request.url} -> "
                f"{response.status_code} {response.text}"
            )
        await asyncio.sleep(0.5 * (attempt + 1))
    raise RuntimeError("demo seed: registry kept failing")


def _plan(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Where the demo recipients are and what they are like (deterministic)."""
    kelurahan = sorted(a.code for a in areas().level("kelurahan"))
    directory = areas()
    used: set[tuple[str, int]] = set()
    plans = []
    for index in range(count):
        code = kelurahan[index % len(kelurahan)] if index < len(kelurahan) else rng.choice(kelurahan)
        place = directory.kelurahan(code).name
        roll = rng.random()
        kind = (
            "rw_rentan"
            if roll < 0.7
            else "panti_asuhan"
            if roll < 0.8
            else "panti_lansia"
            if roll < 0.86
            else "panti_disabilitas"
            if roll < 0.9
            else "pesantren"
        )
        rw = None
        if kind == "rw_rentan":
            rw = rng.randint(1, 15)
            while (code, rw) in used:
                rw = rng.randint(1, 20)
            used.add((code, rw))
            households = rng.randint(40, 400)
            people = households * rng.randint(3, 5)
            name = f"RW {rw:02d} {place}"
        else:
            people = rng.randint(20, 180)
            households = 0
            label = {
                "panti_asuhan": "Panti Asuhan",
                "panti_lansia": "Panti Werdha",
                "panti_disabilitas": "Panti Disabilitas",
                "pesantren": "Pondok Pesantren",
            }[kind]
            name = f"{label} {rng.choice(NAMES)} {place}"
        children = int(people * (0.7 if kind == "panti_asuhan" else rng.uniform(0.2, 0.35)))
        elderly = int(people * (0.8 if kind == "panti_lansia" else rng.uniform(0.05, 0.12)))
        disabled = int(people * (0.6 if kind == "panti_disabilitas" else rng.uniform(0.0, 0.04)))
        status_roll = rng.random()
        status = (
            "active"
            if status_roll < 0.85
            else "verified"
            if status_roll < 0.92
            else "registered"
            if status_roll < 0.97
            else "suspended"
        )
        plans.append(
            {
                "key": f"demo-recipient-{index}",
                "name": name,
                "kind": kind,
                "kelurahan_code": code,
                "rw": rw,
                "street_address": f"Jl. {rng.choice(STREETS)} No. {rng.randint(1, 120)}",
                "beneficiaries": {
                    "households": households,
                    "people": people,
                    "children": min(children, people),
                    "elderly": min(elderly, people),
                    "disabled": min(disabled, people),
                },
                "contact": {
                    "name": f"{'Ibu' if rng.random() < 0.5 else 'Bapak'} {rng.choice(PEOPLE)}",
                    "phone": f"08{rng.randint(11, 59)}{rng.randint(10_000_000, 99_999_999)}",
                },
                "status": status,
                "extra_need": rng.random() < 0.35,
                "days": rng.randint(5, 30),
            }
        )
    return plans


async def seed(ctx: DemoContext, *, recipients_wanted: int = RECIPIENTS) -> None:
    """Create the demo organisations, recipients and needs; record their ids in ctx.state['registry']."""
    rng = random.Random(SEED)
    today = date.today()
    async with ctx.client("registry", "admin", subject="demo-admin") as admin:
        organisations = []
        for index, spec in enumerate(ORGANISATIONS):
            body = {
                "name": spec["name"],
                "kind": spec["kind"],
                "area_codes": spec["kota"],
                "contact": {"name": "Sekretariat", "email": spec["email"]},
            }
            response = await _retrying(
                partial(
                    admin.post,
                    "/v1/organisations",
                    json=body,
                    headers={"Idempotency-Key": f"demo-org-{index}"},
                )
            )
            organisations.append({**response.json(), "kota": spec["kota"]})
        by_kota = {kota: org for org in organisations for kota in org["kota"]}
        fallback = organisations[-1]
        facilitators = {
            org["organisation_id"]: ctx.client(
                "registry", "facilitator", org_id=org["organisation_id"], subject=f"demo-staff-{i}"
            )
            for i, org in enumerate(organisations)
        }
        recipients: list[dict[str, Any]] = []
        needs: list[dict[str, Any]] = []

        async def one(plan: dict[str, Any]) -> None:
            org = by_kota.get(plan["kelurahan_code"][:5], fallback)
            staff = facilitators[org["organisation_id"]]
            body = {
                k: plan[k]
                for k in (
                    "name",
                    "kind",
                    "kelurahan_code",
                    "rw",
                    "street_address",
                    "beneficiaries",
                    "contact",
                )
            }
            body["organisation_id"] = org["organisation_id"]
            created = await _retrying(
                lambda: staff.post("/v1/recipients", json=body, headers={"Idempotency-Key": plan["key"]})
            )
            if created.status_code == 409:
                return  # a duplicate from an earlier, differently seeded run
            recipient = created.json()
            rid = recipient["recipient_id"]
            steps = {
                "registered": [],
                "verified": ["verify"],
                "active": ["verify", "activate"],
                "suspended": ["verify", "activate"],
            }[plan["status"]]
            for step in steps:
                await _retrying(
                    partial(
                        staff.post,
                        f"/v1/recipients/{rid}/{step}",
                        json={"reason": "Survei lapangan oleh relawan"},
                    )
                )
            if plan["status"] in ("active", "suspended"):
                suggestions = (
                    await _retrying(lambda: staff.get(f"/v1/recipients/{rid}/need-suggestions"))
                ).json()
                wanted = [s for s in suggestions if s["recurrence"] != "none"][:1]
                if plan["extra_need"]:
                    wanted.append(
                        {
                            "item": "hygiene_kit",
                            "quantity": max(1, plan["beneficiaries"]["people"] // 10),
                            "priority": "medium",
                            "recurrence": "none",
                        }
                    )
                for index, suggestion in enumerate(wanted):
                    need_body = {
                        "item": suggestion["item"],
                        "quantity": suggestion["quantity"],
                        "priority": suggestion["priority"],
                        "recurrence": suggestion["recurrence"],
                        "needed_by": (today + timedelta(days=plan["days"])).isoformat(),
                    }
                    made = await _retrying(
                        partial(
                            staff.post,
                            f"/v1/recipients/{rid}/needs",
                            json=need_body,
                            headers={"Idempotency-Key": f"{plan['key']}-need-{index}"},
                        )
                    )
                    if made.status_code == 201:
                        need = made.json()
                        needs.append(
                            {
                                "need_id": need["need_id"],
                                "recipient_id": rid,
                                "item": need["item"],
                                "quantity": need["quantity"],
                                "organisation_id": org["organisation_id"],
                                "kelurahan_code": need["kelurahan_code"],
                                "status": need["status"],
                            }
                        )
            if plan["status"] == "suspended":
                await _retrying(
                    lambda: admin.post(
                        f"/v1/recipients/{rid}/suspend", json={"reason": "Laporan warga sedang ditinjau"}
                    )
                )
            recipients.append(
                {
                    "recipient_id": rid,
                    "organisation_id": org["organisation_id"],
                    "kind": plan["kind"],
                    "kelurahan_code": plan["kelurahan_code"],
                    "rw": plan["rw"],
                    "status": plan["status"],
                    "plan_key": plan["key"],
                }
            )

        plans = _plan(rng, recipients_wanted)
        try:
            with ctx.progress("  registry: recipients", len(plans), unit="recipients") as progress:
                for start in range(0, len(plans), BATCH):
                    await asyncio.gather(*(one(p) for p in plans[start : start + BATCH]))
                    progress.advance(len(plans[start : start + BATCH]))
        finally:
            for client in facilitators.values():
                await client.aclose()
    # Batches finish in any order; keep the published lists in plan order for reproducible seeds.
    order = {plan["key"]: position for position, plan in enumerate(plans)}
    recipients.sort(key=lambda r: order[r.pop("plan_key")])
    rank = {r["recipient_id"]: position for position, r in enumerate(recipients)}
    needs.sort(key=lambda n: (rank.get(n["recipient_id"], len(rank)), n["need_id"]))
    open_needs = [
        n
        for n in needs
        if n["status"] == "open"
        and any(r["recipient_id"] == n["recipient_id"] and r["status"] == "active" for r in recipients)
    ]
    ctx.state["registry"] = {
        "organisations": [o["organisation_id"] for o in organisations],
        "recipients": [r["recipient_id"] for r in recipients],
        "needs": [n["need_id"] for n in open_needs],
        "organisation_details": organisations,
        "recipient_details": recipients,
        "need_details": open_needs,
    }
    print(
        f"  registry: {len(organisations)} organisations, {len(recipients)} recipients, "
        f"{len(open_needs)} open needs",
        flush=True,
    )
