"""Registry benchmark: filtered list queries and creates through the use cases, next to bare PyMongo.

    uv run --no-sync python bench/registry_bench.py [--recipients 10000] [--needs 100000] [--creates 300]
    uv run --no-sync python bench/registry_bench.py --tiny            # a smoke run (the test suite's)

Seeds recipients (with the duplicate-key claims each live one holds) and needs into a scratch database
(documents built by the domain rules, written in bulk),
wires the registry's MongoDB stores and use cases the way the composition root does
(`bootstrap.mongo_stores`, `bootstrap.use_cases`: outbox markers included, no Kafka — events stay in
the outbox), then measures in the same run:

* p50/p99 of the filtered lists (`recipients.find`, `needs.find`) against the same query in bare PyMongo;
* recipient registrations (`recipients.register`: duplicate-key claims and outbox marker at once, then
  document + outbox; the organisation read only when the one read a moment ago is older than 1 s; claim
  confirmations after the answer, one write for many), sequential, against a bare sequential `insert_one`
  (goal ≥ 0.3×), against the same commands in bare PyMongo (the protocol's own cost) and against a
  registration in two commands (marker, then a document carrying its keys under unique indexes: the bound of
  a design without a claims collection); they take turns in blocks of 10 calls, so that the shared machine's
  changing load falls on all of them alike;
* need posts (`needs.post`: recipient read and outbox marker at once, then document + outbox, then the
  recipient's status again), the same way;
* the commands each of them sends, counted on the wire (PyMongo command monitoring on a second client, in
  an untimed pass), and the load average of the machine around the timed runs.

On mongo-java-server (the local stand-in) non-unique indexes are ignored, so every filtered query there
is a collection scan; the indexes the queries need are checked with `list_indexes` all the same.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from common import Results, Row, bench_arguments, cpu_seconds, infra_env, infra_pid, ratio, sampled_profiles
from ksbb_contracts.areas import areas
from ksbb_contracts.events.registry import Beneficiaries
from ksbb_contracts.vocab import Item, NeedStatus, OrganisationKind, RecipientKind, RecipientStatus
from ksbb_kit.auth import Principal, Role
from ksbb_kit.ids import new_id
from ksbb_kit.mongo import connect
from ksbb_kit.outbox import MARKERS, OutboxRelay
from ksbb_kit.runtime import ServiceRuntime
from ksbb_registry import bootstrap
from ksbb_registry.adapters.claims import new_claim
from ksbb_registry.adapters.members import identity_directory
from ksbb_registry.adapters.needs import NEED_DOCUMENTS
from ksbb_registry.adapters.recipients import RECIPIENT_DOCUMENTS
from ksbb_registry.adapters.store import HIDDEN, INDEXES
from ksbb_registry.app.access import author_of
from ksbb_registry.app.needs import NeedFilters
from ksbb_registry.app.ports import Page
from ksbb_registry.app.recipients import RecipientFilters
from ksbb_registry.domain import needs as need_rules
from ksbb_registry.domain import recipients as recipient_rules
from ksbb_registry.domain.duplicates import claim_keys
from ksbb_registry.domain.needs import NewNeed
from ksbb_registry.domain.organisations import NewOrganisation, OrganisationContact
from ksbb_registry.domain.recipients import ContactPerson, NewRecipient
from ksbb_registry.settings import RegistrySettings
from pymongo import ASCENDING, ReturnDocument, monitoring

ADMIN = Principal(subject="bench-admin", role=Role.ADMIN)
ORGANISATIONS = 8


def new_recipient(rng: random.Random, index: int, organisation_id: str, kelurahan: list[str]) -> NewRecipient:
    """A plausible registration, unique by its name and address and by its RW."""
    code = kelurahan[index % len(kelurahan)]
    households = rng.randint(20, 300)
    return NewRecipient(
        name=f"RW {index // len(kelurahan) + 1:03d} {code}",
        kind=RecipientKind.RW_RENTAN,
        organisation_id=organisation_id,
        kelurahan_code=code,
        rw=index // len(kelurahan) % 99 + 1 if index < len(kelurahan) * 99 else None,
        street_address=f"Jl. Bench No. {index}",
        beneficiaries=Beneficiaries(households=households, people=households * 4),
        contact=ContactPerson(name="Ibu Uji", phone="+6281234567890"),
    )


def recipient_document(command: NewRecipient, recipient_id: str, status: str, now: datetime) -> dict[str, Any]:
    """The stored document of a registration, as the domain rule builds it (for bulk seeding)."""
    location = recipient_rules.validate_new(command)
    keys = recipient_rules.keys_of(command, location)
    change = recipient_rules.register(recipient_id, command, location, keys, author_of(ADMIN), now, [])
    return {**RECIPIENT_DOCUMENTS.dump(change.after), "status": status, "_outbox": [], "_outbox_pending": False}


def need_document(rng: random.Random, recipient: Any, now: datetime) -> dict[str, Any]:
    """The stored document of a posted need (status drawn at random), as the domain rule builds it."""
    command = NewNeed(
        item=rng.choice([Item.SEMBAKO, Item.READY_MEALS, Item.MASKS, Item.BABY_MILK]),
        quantity=rng.randint(1, 400),
        needed_by=now.date() + timedelta(days=rng.randint(1, 60)),
    )
    change = need_rules.post(new_id("ned"), recipient, command, ADMIN.subject, now)
    status = rng.choices(["open", "fulfilled", "closed", "cancelled"], weights=[60, 25, 10, 5])[0]
    return {**NEED_DOCUMENTS.dump(change.after), "status": status, "_outbox": [], "_outbox_pending": False}


def percentile(values: list[float], q: float) -> float:
    """A percentile of the values (q in 0..100)."""
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


async def timed(
    results: Results, label: str, runs: int, ours: Callable[[], Awaitable[Any]], bare: Callable[[], Awaitable[Any]]
) -> None:
    """Interleave our query and the bare one; report p50/p99 of each and the p50 ratio."""
    ours_ms: list[float] = []
    bare_ms: list[float] = []
    await ours()
    await bare()  # warm-up
    for _ in range(runs):
        for sink, call in ((ours_ms, ours), (bare_ms, bare)):
            started = time.perf_counter()
            await call()
            sink.append((time.perf_counter() - started) * 1000)
    ours_p50, bare_p50 = percentile(ours_ms, 50), percentile(bare_ms, 50)
    results.add(Row(
        f"registry: list {label} (p50)", round(ours_p50, 2), "ms", "≥ 0.5× bare query (p50)", round(bare_p50, 2),
        "ms, the same query in bare PyMongo", round(ratio(ours_p50, bare_p50, smaller_is_better=True), 2),
        ratio(ours_p50, bare_p50, smaller_is_better=True) >= 0.5,
        f"p99 {percentile(ours_ms, 99):.1f} ms (bare {percentile(bare_ms, 99):.1f} ms); a collection scan on the "
        "stand-in",
    ))


class CommandCount(monitoring.CommandListener):
    """Counts the commands a client sends, by name and collection."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(f"{event.command_name} {event.command.get(event.command_name)}")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class _Unpublished:
    """The counting pass runs no relay: nothing is ever sent."""

    async def send(self, topic: str, key: Any, value: Any, headers: Any) -> None:
        raise RuntimeError("the counting pass publishes nothing")


async def commands_per_call(
    runtime: ServiceRuntime, settings: RegistrySettings, organisation_id: str, active: list[Any],
    rng: random.Random, kelurahan: list[str], first_index: int, calls: int,
) -> tuple[float, float, str]:
    """Commands per registration and per need post on the wire (a second, watched client; untimed)."""
    counter = CommandCount()
    client = connect(settings.mongodb_url, event_listeners=[counter])
    try:
        db = client[runtime.db.name]
        relay = OutboxRelay(db, bootstrap.OUTBOX_COLLECTIONS, _Unpublished())
        stores, _ = bootstrap.mongo_stores(db, runtime.clock, outbox=runtime.events, pending=relay.pending,
                                           claim_grace_seconds=settings.claim_grace_seconds)
        services = bootstrap.use_cases(stores, runtime.clock, report_limit_per_hour=settings.report_limit_per_hour,
                                       idempotency=runtime.idempotency, accounts=identity_directory(settings))
        commands = [new_recipient(rng, first_index + i, organisation_id, kelurahan) for i in range(calls + 1)]
        await services.recipients.register(new_id("rcp"), commands[0], ADMIN)  # the organisation read once
        await asyncio.sleep(0.2)
        counter.sent.clear()
        for command in commands[1:]:
            await services.recipients.register(new_id("rcp"), command, ADMIN)
        await asyncio.sleep(0.2)  # the gathered confirmations
        registration = len(counter.sent) / calls
        kinds = ", ".join(f"{n / calls:.2f} {name}" for name, n in Counter(counter.sent).most_common())
        counter.sent.clear()
        need = NewNeed(item=Item.SEMBAKO, quantity=10, needed_by=date.today() + timedelta(days=7))
        for recipient in active[:calls]:
            await services.needs.post(new_id("ned"), recipient.recipient_id, need, ADMIN)
        return registration, len(counter.sent) / calls, kinds
    finally:
        await client.close()


def registration_floor(db: Any, document: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    """A registration's commands in bare PyMongo, nothing else: two claims and the outbox marker at once, then
    the document (what the protocol itself costs, next to what the use case costs)."""
    recipient_id = new_id("rcp")
    claimed_at = document["created_at"]
    claims = [new_claim(f"{kind}:floor-{recipient_id}", recipient_id, claimed_at) for kind in ("name", "rw")]

    async def call() -> None:
        await asyncio.gather(
            db["recipient_claims"].insert_many(claims, ordered=False),
            db[MARKERS].find_one_and_update(
                {"_id": f"recipients/{recipient_id}"},
                {"$inc": {"open": 1}, "$set": {"at": document["created_at"]},
                 "$setOnInsert": {"c": "recipients", "d": recipient_id, "epoch": new_id("obm")}},
                upsert=True, return_document=ReturnDocument.AFTER, projection={"epoch": 1},
            ),
        )
        await db["recipients"].insert_one({**document, "_id": recipient_id})

    return call


#: Where the two-command floor writes: documents carrying their duplicate keys under unique indexes.
KEYED = "floor_keyed_recipients"


def two_command_floor(db: Any, document: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    """A registration in two commands, in bare PyMongo: the outbox marker, then the document carrying its own
    duplicate keys under unique indexes (no claims collection) — the bound of such a design, next to ours."""
    recipient_id = new_id("rcp")

    async def call() -> None:
        await db[MARKERS].find_one_and_update(
            {"_id": f"{KEYED}/{recipient_id}"},
            {"$inc": {"open": 1}, "$set": {"at": document["created_at"]},
             "$setOnInsert": {"c": KEYED, "d": recipient_id, "epoch": new_id("obm")}},
            upsert=True, return_document=ReturnDocument.AFTER, projection={"epoch": 1},
        )
        await db[KEYED].insert_one({**document, "_id": recipient_id, "name_key": f"name:{recipient_id}",
                                    "rw_claim": f"rw:{recipient_id}"})

    return call


def post_floor(db: Any, recipient_id: str, document: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    """A need post's commands in bare PyMongo: recipient read and marker at once, the need, the recipient again."""
    need_id = new_id("ned")

    async def call() -> None:
        await asyncio.gather(
            db["recipients"].find_one({"_id": recipient_id}, projection=HIDDEN),
            db[MARKERS].find_one_and_update(
                {"_id": f"needs/{need_id}"},
                {"$inc": {"open": 1}, "$set": {"at": document["created_at"]},
                 "$setOnInsert": {"c": "needs", "d": need_id, "epoch": new_id("obm")}},
                upsert=True, return_document=ReturnDocument.AFTER, projection={"epoch": 1},
            ),
        )
        await db["needs"].insert_one({**document, "_id": need_id})
        await db["recipients"].find_one({"_id": recipient_id}, projection=HIDDEN)

    return call


async def interleaved_rates(kinds: dict[str, list[Callable[[], Awaitable[Any]]]], block: int = 10) -> dict[str, float]:
    """Calls per second of each kind, one call after another, the kinds taking turns in blocks of `block` calls so
    that a change in the (shared) machine's load falls on every kind alike."""
    elapsed = dict.fromkeys(kinds, 0.0)
    count = min(len(calls) for calls in kinds.values())
    for start in range(0, count, block):
        for name, calls in kinds.items():
            began = time.perf_counter()
            for call in calls[start : start + block]:
                await call()
            elapsed[name] += time.perf_counter() - began
    return {name: count / elapsed[name] for name in kinds}


async def registration_profile(
    services: Any, organisation_ids: list[str], rng: random.Random, kelurahan: list[str], first: int, count: int
) -> str:
    """Where a registration's wall time goes: CPU of this process (the use case) and of the database server per
    call, the rest waiting on the wire; and a sampled profile of this process by package."""
    commands = [new_recipient(rng, first + i, organisation_ids[i % ORGANISATIONS], kelurahan) for i in range(count)]
    server = infra_pid("mongo")
    # The sampler runs a little longer than the calls: only the calls' own window is timed.

    async def register_all() -> tuple[float, float, float]:
        own, database, began = cpu_seconds(os.getpid()), cpu_seconds(server) if server else 0.0, time.perf_counter()
        for command in commands:
            await services.recipients.register(new_id("rcp"), command, ADMIN)
        return (time.perf_counter() - began, cpu_seconds(os.getpid()) - own,
                (cpu_seconds(server) - database) if server else float("nan"))

    (wall, own, database), profiles = await asyncio.gather(
        register_all(), sampled_profiles({"registry": os.getpid()}, 3))
    wall, own, database = (1000 * seconds / count for seconds in (wall, own, database))
    return (f"profile of {count} sequential registrations: {wall:.2f} ms each, of which {own:.2f} ms CPU in the "
            f"registry's code (this process; the sampler's own cost included) and {database:.2f} ms CPU in the "
            f"database server; the rest is waiting between the two on the wire. Where the registry's CPU goes: "
            f"{profiles['registry']}")


async def main() -> None:
    """Seed, wire the use cases, check indexes, measure, clean up."""
    parser = bench_arguments(__doc__)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--needs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50, help="repetitions per list query")
    parser.add_argument("--creates", type=int, default=300, help="sequential creates measured")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if args.tiny:
        args.recipients, args.needs, args.runs, args.creates = 200, 1000, 5, 20
    env = infra_env()
    settings = RegistrySettings(
        env="development", dev_issuer_enabled=True, kafka_bootstrap=env["KSBB_KAFKA_BOOTSTRAP"],
        mongodb_url=env["KSBB_MONGODB_URL"], topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
    )
    runtime = ServiceRuntime(
        settings, title=bootstrap.TITLE, description=bootstrap.DESCRIPTION,
        outbox_collections=bootstrap.OUTBOX_COLLECTIONS,
    )
    db = runtime.db
    stores, setup = bootstrap.mongo_stores(
        db, runtime.clock, outbox=runtime.events, pending=runtime.relay.pending,
        claim_grace_seconds=settings.claim_grace_seconds,
    )
    services = bootstrap.use_cases(
        stores, runtime.clock, report_limit_per_hour=settings.report_limit_per_hour,
        idempotency=runtime.idempotency, accounts=identity_directory(settings),
    )
    results = Results("registry")
    rng = random.Random(7)
    kelurahan = sorted(a.code for a in areas().level("kelurahan"))
    build = (await db.client.server_info()).get("version", "?")
    print(f"registry benchmark on {env['KSBB_MONGODB_URL']} (server reports {build}); database {db.name}")
    try:
        await setup()
        organisation_ids = []
        for index in range(ORGANISATIONS):
            organisation, _ = await services.organisations.register(
                new_id("org"),
                NewOrganisation(name=f"Yayasan Bench {index}", kind=OrganisationKind.NGO,
                                contact=OrganisationContact(email=f"bench{index}@example.org")),
            )
            organisation_ids.append(organisation.organisation_id)
        await db["organisations"].update_many({}, {"$set": {"status": "active"}})
        for collection, models in INDEXES.items():
            present = {ix["name"] async for ix in await db[collection].list_indexes()}
            wanted = {m.document["name"] for m in models}
            if not wanted <= present:
                raise SystemExit(f"{collection}: missing indexes {wanted - present}")

        started = time.perf_counter()
        now = datetime.now(UTC)
        recipients = [
            recipient_document(new_recipient(rng, i, organisation_ids[i % ORGANISATIONS], kelurahan), new_id("rcp"),
                               rng.choices(["active", "verified", "registered", "suspended"], [80, 10, 7, 3])[0], now)
            for i in range(args.recipients)
        ]
        for start in range(0, len(recipients), 2000):
            await db["recipients"].insert_many(recipients[start:start + 2000], ordered=False)
        # Every live recipient holds its duplicate-key claims, as in a real registry: a claim write that
        # scans the collection shows up here as it would there.
        claims = [
            {"_id": key, "recipient_id": doc["_id"], "claimed_at": now, "confirmed": True}
            for doc in recipients for key in claim_keys(doc.get("identity_key"), doc.get("rw_key"))
        ]
        for start in range(0, len(claims), 4000):
            await db["recipient_claims"].insert_many(claims[start:start + 4000], ordered=False)
        loaded = [RECIPIENT_DOCUMENTS.load(doc) for doc in recipients]
        active = [r for r in loaded if r.status is RecipientStatus.ACTIVE]
        for start in range(0, args.needs, 2000):
            batch = [need_document(rng, rng.choice(active), now) for _ in range(min(2000, args.needs - start))]
            await db["needs"].insert_many(batch, ordered=False)
        print(f"seeded {len(recipients)} recipients ({len(claims)} claims) and {args.needs} needs in "
              f"{time.perf_counter() - started:.0f} s", flush=True)

        facilitator = Principal(subject="bench-staff", role=Role.FACILITATOR, org_id=organisation_ids[3])
        sample = recipients[len(recipients) // 2]
        kota = sample["kota_code"]
        listed = {**HIDDEN, "audit": 0}

        def bare(collection: str, query: dict[str, Any], projection: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
            return lambda: db[collection].find(query, projection=projection).sort("_id", ASCENDING).limit(51).to_list()

        await timed(
            results, "recipients kota=… status=active (admin)", args.runs,
            lambda: services.recipients.find(
                ADMIN, RecipientFilters(kota_code=kota, status=RecipientStatus.ACTIVE), Page(50)),
            bare("recipients", {"kota_code": kota, "status": "active"}, listed),
        )
        await timed(
            results, "recipients of own organisation (facilitator)", args.runs,
            lambda: services.recipients.find(facilitator, RecipientFilters(), Page(50)),
            bare("recipients", {"organisation_id": organisation_ids[3]}, listed),
        )
        await timed(
            results, "needs status=open kota=… (admin)", args.runs,
            lambda: services.needs.find(ADMIN, NeedFilters(status=NeedStatus.OPEN, kota_code=kota), Page(50)),
            bare("needs", {"status": "open", "kota_code": kota}, HIDDEN),
        )
        await timed(
            results, "needs of one recipient", args.runs,
            lambda: services.needs.find(ADMIN, NeedFilters(recipient_id=sample["_id"]), Page(50)),
            bare("needs", {"recipient_id": sample["_id"]}, HIDDEN),
        )

        # Creates, one after another: through the use case, against a bare insert of a comparable document.
        commands = [new_recipient(rng, args.recipients + i, organisation_ids[i % ORGANISATIONS], kelurahan)
                    for i in range(args.creates)]
        spare = [recipient_document(new_recipient(rng, args.recipients + args.creates + i, organisation_ids[0],
                                                  kelurahan), new_id("rcp"), "registered", now)
                 for i in range(args.creates)]
        spare_posts = [
            recipient_document(
                new_recipient(rng, args.recipients + 3 * args.creates + i, organisation_ids[0], kelurahan),
                new_id("rcp"), "registered", now,
            )
            for i in range(args.creates)
        ]
        load_before = os.getloadavg()[0]
        for field in ("name_key", "rw_claim"):
            await db[KEYED].create_index(field, unique=True, sparse=True)
        creates = await interleaved_rates({
            "bare": [partial(db["recipients"].insert_one, doc) for doc in spare],
            "ours": [partial(services.recipients.register, new_id("rcp"), command, ADMIN) for command in commands],
            "floor": [registration_floor(db, doc) for doc in spare],
            "two": [two_command_floor(db, doc) for doc in spare],
        })
        ours, floor, bare_rate, two = creates["ours"], creates["floor"], creates["bare"], creates["two"]
        need_command = NewNeed(item=Item.SEMBAKO, quantity=10, needed_by=date.today() + timedelta(days=7))
        post_rates = await interleaved_rates({
            "bare": [partial(db["recipients"].insert_one, doc) for doc in spare_posts],
            "ours": [partial(services.needs.post, new_id("ned"), recipient.recipient_id, need_command, ADMIN)
                     for recipient in active[: args.creates]],
            "floor": [post_floor(db, recipient.recipient_id, need_document(rng, recipient, now))
                      for recipient in active[: args.creates]],
        })
        posts, posts_floor, posts_bare = post_rates["ours"], post_rates["floor"], post_rates["bare"]
        load_after = os.getloadavg()[0]
        per_registration, per_post, kinds = await commands_per_call(
            runtime, settings, organisation_ids[1], active[args.creates:], rng, kelurahan,
            args.recipients + 4 * args.creates, min(args.creates, 50),
        )
        print(f"commands per registration {per_registration:.2f} ({kinds}); per need post {per_post:.2f}; "
              f"load average {load_before:.1f} before, {load_after:.1f} after the timed runs; the same commands in "
              f"bare PyMongo: registrations {floor:.1f}/s ({ratio(floor, bare_rate):.2f}× bare insert), need posts "
              f"{posts_floor:.1f}/s ({ratio(posts_floor, posts_bare):.2f}×)", flush=True)
        load = f"load average {load_before:.1f}/{load_after:.1f} (1 min, before/after the timed runs)"
        results.notes.append(await registration_profile(services, organisation_ids, rng, kelurahan,
                                                        args.recipients + 4 * args.creates + 1000, args.creates))
        create_ratio = ratio(ours, bare_rate)
        results.add(Row(
            "registry: recipient registrations (sequential)", round(ours, 1), "creates/s", "≥ 0.3× bare insert",
            round(bare_rate, 1), "bare insert_one/s, in turns with ours", round(create_ratio, 2), create_ratio >= 0.3,
            f"{per_registration:.2f} commands each on the wire, two sequential round trips: duplicate-key claims "
            "(one insert) and outbox marker at once, then the document with its events; the organisation read "
            "only when the one read a moment ago is over 1 s old; claim confirmations after the answer, one "
            f"write for many. The same commands in bare PyMongo: {floor:.1f}/s ({ratio(floor, bare_rate):.2f}× "
            "bare insert), what the protocol itself costs; two commands (the outbox marker, then the "
            "document carrying its duplicate keys under unique indexes, no claims collection) in bare PyMongo: "
            f"{two:.1f}/s ({ratio(two, bare_rate):.2f}×); {load}",
        ))
        results.add(Row(
            "registry: need posts (sequential)", round(posts, 1), "creates/s", "(reported)", round(posts_bare, 1),
            "bare insert_one/s, in turns with ours", round(ratio(posts, posts_bare), 2), None,
            f"{per_post:.2f} commands each, three sequential round trips: recipient read and outbox marker at "
            "once, the document with its events, the recipient's status again (a suspension between the check "
            "and the insert must not leave the need open). The same commands in bare PyMongo: "
            f"{posts_floor:.1f}/s ({ratio(posts_floor, posts_bare):.2f}× bare insert); {load}",
        ))
        results.notes.append(
            "Figures on mongo-java-server: non-unique indexes are ignored there, so every filtered list is a "
            "collection scan; a real MongoDB uses the declared indexes."
        )
        results.write(args.json)
    finally:
        if not args.keep:
            await db.client.drop_database(db.name)
        await db.client.close()


if __name__ == "__main__":
    asyncio.run(main())
