"""Registry benchmark: filtered list queries and create throughput, against a bare PyMongo baseline.

Seeds N recipients and M needs (default 10,000 / 100,000) into a scratch database, then measures:

* p50/p99 latency of the registry's filtered list queries (through `RegistryService`, the code the API
  runs) and of the same query issued with bare PyMongo in the same run (ratio = overhead of our layer);
* create throughput through the service (duplicate check + document + outbox entries) vs a bare insert;
* that the indexes the queries need are declared (asserted with `list_indexes`).

Figures measured on mongo-java-server (the CI / local stand-in) are labelled as such: it accepts but
ignores non-unique indexes, so every filtered query there is a collection scan. Run against a real
MongoDB for index-backed figures.

    export $(cat .ksbb/infra/infra.env | xargs)
    uv run --no-sync python bench/registry_bench.py [--recipients 10000] [--needs 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from ksbb_contracts.areas import areas
from ksbb_kit.auth import Principal, Role
from ksbb_kit.clock import SystemClock
from ksbb_kit.ids import new_id
from ksbb_kit.mongo import connect
from ksbb_kit.outbox import outbox_entries
from ksbb_registry.adapters.store import HIDDEN, INDEXES
from ksbb_registry.api import schemas
from ksbb_registry.domain import rules
from ksbb_registry.service import RegistryService
from pymongo import ASCENDING

ORGS = [f"org_bench_{i}" for i in range(8)]
ADMIN = Principal(subject="bench-admin", role=Role.ADMIN)


def runtime_for(db: Any) -> Any:
    """The parts of ServiceRuntime the service uses, without Kafka (events stay in the outbox)."""
    clock = SystemClock()
    return SimpleNamespace(
        db=db,
        clock=clock,
        relay=SimpleNamespace(wake=lambda: None),
        events=lambda *events: outbox_entries(events, source="/ksbb/registry-bench", clock=clock),
    )


def recipient_body(rng: random.Random, index: int, kelurahan: list[str]) -> schemas.RecipientCreate:
    """A plausible, unique recipient registration."""
    code = kelurahan[index % len(kelurahan)]
    return schemas.RecipientCreate(
        name=f"RW {index // len(kelurahan) + 1:03d} {code}",
        kind="rw_rentan",
        organisation_id=ORGS[index % len(ORGS)],
        kelurahan_code=code,
        rw=index // len(kelurahan) % 99 + 1,
        street_address=f"Jl. Bench No. {index}",
        beneficiaries=schemas.BeneficiaryCounts(
            households=rng.randint(20, 300), people=rng.randint(300, 1200)
        ),
        contact=schemas.ContactPerson(name="Ibu Uji", phone="081234567890"),
    )


def recipient_document(body: schemas.RecipientCreate, rid: str, status: str, now: datetime) -> dict[str, Any]:
    """The document the service would store (bulk seeding bypasses the per-insert duplicate scan)."""
    location = rules.validate_location(body.kelurahan_code)
    return {
        "_id": rid,
        "name": body.name,
        "kind": body.kind.value,
        "kind_description": None,
        "organisation_id": body.organisation_id,
        "kelurahan_code": location.kelurahan_code,
        "kecamatan_code": location.kecamatan_code,
        "kota_code": location.kota_code,
        "rw": body.rw,
        "rt": None,
        "street_address": body.street_address,
        "coordinates": None,
        "beneficiaries": body.beneficiaries.model_dump(),
        "contact": body.contact.model_dump(),
        "notes": None,
        "status": status,
        "version": 3,
        "identity_key": rules.identity_key(body.name, body.street_address),
        "rw_key": rules.rw_key(body.kind, location.kelurahan_code, body.rw),
        "audit": [],
        "created_at": now,
        "updated_at": now,
        "_outbox": [],
        "_outbox_pending": False,
    }


def need_document(rng: random.Random, recipient: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A need document as the service stores it."""
    quantity = rng.randint(1, 400)
    status = rng.choices(["open", "fulfilled", "closed", "cancelled"], weights=[60, 25, 10, 5])[0]
    return {
        "_id": new_id("need"),
        "recipient_id": recipient["_id"],
        "organisation_id": recipient["organisation_id"],
        "kelurahan_code": recipient["kelurahan_code"],
        "kecamatan_code": recipient["kecamatan_code"],
        "kota_code": recipient["kota_code"],
        "rw": recipient["rw"],
        "item": rng.choice(["sembako", "ready_meals", "masks", "baby_milk"]),
        "item_description": None,
        "quantity": quantity,
        "unit": "paket",
        "priority": rng.choice(["high", "medium", "low"]),
        "needed_by": (date.today() + timedelta(days=rng.randint(1, 60))).isoformat(),
        "recurrence": "none",
        "series_id": None,
        "period_start": None,
        "series_next_at": None,
        "status": status,
        "status_reason": None,
        "notes": None,
        "ledger": {
            "requested": quantity,
            "committed": 0,
            "in_transit": 0,
            "delivered": 0,
            "ledger_version": 0,
        },
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "_outbox": [],
        "_outbox_pending": False,
    }


async def timed(
    label: str, runs: int, ours: Callable[[], Awaitable[Any]], bare: Callable[[], Awaitable[Any]]
) -> None:
    """Interleave our query and the bare one; print p50/p99 of each and the p50 ratio."""
    ours_ms: list[float] = []
    bare_ms: list[float] = []
    await ours()
    await bare()  # warm-up
    for _ in range(runs):
        for sink, call in ((ours_ms, ours), (bare_ms, bare)):
            started = time.perf_counter()
            await call()
            sink.append((time.perf_counter() - started) * 1000)

    def pct(values: list[float], q: float) -> float:
        return (
            statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
            if len(values) > 1
            else values[0]
        )

    print(
        f"  {label:<46} ours p50 {pct(ours_ms, 50):8.2f} ms  p99 {pct(ours_ms, 99):8.2f} ms | "
        f"bare p50 {pct(bare_ms, 50):8.2f} ms  p99 {pct(bare_ms, 99):8.2f} ms | "
        f"ratio {pct(ours_ms, 50) / pct(bare_ms, 50):5.2f}"
    )


async def main() -> None:
    """Seed, assert indexes, measure, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--needs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50, help="repetitions per query")
    parser.add_argument("--creates", type=int, default=300, help="creates measured through the service")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    url = os.environ.get("KSBB_MONGODB_URL", "mongodb://127.0.0.1:27018/")
    client = connect(url)
    build = (await client.server_info()).get("version", "?")
    name = f"ksbb_registry_bench_{int(time.time())}"
    db = client[name]
    service = RegistryService(runtime_for(db))  # type: ignore[arg-type]
    rng = random.Random(7)
    kelurahan = sorted(a.code for a in areas().level("kelurahan"))
    print(f"registry benchmark on {url} (server reports version {build}); database {name}")
    print(
        "NOTE: if this is mongo-java-server (CI/local stand-in) non-unique indexes are ignored:"
        " every filtered query below is a collection scan there."
    )
    try:
        await service.setup()
        now = datetime.now(UTC)
        for org in ORGS:
            await db["organisations"].insert_one(
                {
                    "_id": org,
                    "name": org,
                    "kind": "ngo",
                    "area_codes": [],
                    "contact": {"email": "x@example.org"},
                    "status": "active",
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        # Declared indexes exist (what a real MongoDB would use).
        for collection, models in INDEXES.items():
            present = {ix["name"] async for ix in await db[collection].list_indexes()}
            wanted = {m.document["name"] for m in models}
            assert wanted <= present, f"{collection}: missing indexes {wanted - present}"
        print(
            f"indexes declared and listed: {sum(len(m) for m in INDEXES.values())} "
            f"across {len(INDEXES)} collections"
        )

        started = time.perf_counter()
        recipients = []
        for index in range(args.recipients):
            status = rng.choices(["active", "verified", "registered", "suspended"], weights=[80, 10, 7, 3])[0]
            recipients.append(
                recipient_document(recipient_body(rng, index, kelurahan), new_id("rcp"), status, now)
            )
        for start in range(0, len(recipients), 2000):
            await db["recipients"].insert_many(recipients[start : start + 2000], ordered=False)
        needs_total = 0
        batch: list[dict[str, Any]] = []
        for _ in range(args.needs):
            batch.append(need_document(rng, rng.choice(recipients), now))
            if len(batch) == 2000:
                await db["needs"].insert_many(batch, ordered=False)
                needs_total += len(batch)
                batch = []
        if batch:
            await db["needs"].insert_many(batch, ordered=False)
            needs_total += len(batch)
        print(
            f"seeded {len(recipients)} recipients and {needs_total} needs "
            f"in {time.perf_counter() - started:.1f} s"
        )

        facilitator = Principal(subject="bench-staff", role=Role.FACILITATOR, org_id=ORGS[3])
        sample = recipients[len(recipients) // 2]
        kota, kecamatan = sample["kota_code"], sample["kecamatan_code"]
        print(f"list queries, limit 50, {args.runs} runs each (server: {url}):")
        await timed(
            "recipients kota=… status=active (admin)",
            args.runs,
            lambda: service.list_recipients(ADMIN, {"kota_code": kota, "status": "active"}, None, 50, None),
            lambda: (
                db["recipients"]
                .find({"kota_code": kota, "status": "active"}, projection={**HIDDEN, "audit": 0})
                .sort("_id", ASCENDING)
                .limit(51)
                .to_list()
            ),
        )
        await timed(
            "recipients of own organisation (facilitator)",
            args.runs,
            lambda: service.list_recipients(facilitator, {}, None, 50, None),
            lambda: (
                db["recipients"]
                .find({"organisation_id": ORGS[3]}, projection={**HIDDEN, "audit": 0})
                .sort("_id", ASCENDING)
                .limit(51)
                .to_list()
            ),
        )
        await timed(
            "needs status=open kota=… (admin)",
            args.runs,
            lambda: service.list_needs(ADMIN, {"status": "open", "kota_code": kota}, 50, None),
            lambda: (
                db["needs"]
                .find({"status": "open", "kota_code": kota}, projection=HIDDEN)
                .sort("_id", ASCENDING)
                .limit(51)
                .to_list()
            ),
        )
        await timed(
            "needs of one recipient",
            args.runs,
            lambda: service.list_needs(ADMIN, {"recipient_id": sample["_id"]}, 50, None),
            lambda: (
                db["needs"]
                .find({"recipient_id": sample["_id"]}, projection=HIDDEN)
                .sort("_id", ASCENDING)
                .limit(51)
                .to_list()
            ),
        )

        async def bare_open_needs() -> Any:
            ids = await db["needs"].distinct("recipient_id", {"status": "open"})
            return (
                await db["recipients"]
                .find({"kecamatan_code": kecamatan, "_id": {"$in": ids}}, projection={**HIDDEN, "audit": 0})
                .sort("_id", ASCENDING)
                .limit(51)
                .to_list()
            )

        await timed(
            "recipients kecamatan=… has_open_needs (admin)",
            max(5, args.runs // 5),
            lambda: service.list_recipients(ADMIN, {"kecamatan_code": kecamatan}, True, 50, None),
            bare_open_needs,
        )

        # Create throughput: through the service (validation, duplicate check, outbox) vs a bare insert.
        creates = args.creates
        bodies = [recipient_body(rng, args.recipients + i, kelurahan) for i in range(creates)]
        started = time.perf_counter()
        for body in bodies:
            await service.create_recipient(new_id("rcp"), body, ADMIN)
        ours = creates / (time.perf_counter() - started)
        docs = [
            recipient_document(
                recipient_body(rng, args.recipients + creates + i, kelurahan),
                new_id("rcp"),
                "registered",
                now,
            )
            for i in range(creates)
        ]
        started = time.perf_counter()
        for doc in docs:
            await db["recipients"].insert_one(doc)
        bare = creates / (time.perf_counter() - started)
        print(
            f"  recipient creates (sequential, {creates}):  ours {ours:8.1f}/s | "
            f"bare insert_one {bare:8.1f}/s | "
            f"ratio {bare / ours:5.2f}x slower"
        )
        active = [r for r in recipients if r["status"] == "active"][:creates]
        need_body = schemas.NeedCreate(
            item="sembako", quantity=10, needed_by=date.today() + timedelta(days=7)
        )
        started = time.perf_counter()
        for recipient in active:
            await service.create_need(new_id("need"), recipient["_id"], need_body, ADMIN)
        print(
            f"  need creates (sequential, {len(active)}):      "
            f"ours {len(active) / (time.perf_counter() - started):8.1f}/s"
        )
    finally:
        if not args.keep:
            await client.drop_database(name)
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
