"""`ksbb reconcile`: where the owners' and the consumers' views of an aggregate differ.

An operator tool, not a service: it reads each service's database directly. It compares the need
ledgers — owned by pledges (`ledgers`), held by the registry (`needs.ledger`) and the publisher (`needs`
progress) — by version and by the figures' digest; and the needs', recipients' and organisations' public
state — owned by the registry, held by the publisher's read models and (recipients, organisations) the pledges
service's and the notifier's replicas — by the state's digest (`public_state_digest`; the
registry's version also counts changes it does not publish, such as ledger figures, so versions are shown
but not compared); and the recipient blocking each pledges ledger keeps (`ksbb_kit.reconcile_blocking`).
Consumers repair themselves from the owner's events and its anti-entropy jobs (`restated` events). Pledges
and donor profiles — owned by the pledges service, held by the publisher — are compared by version and digest
(`ksbb_kit.reconcile_pledges`). A difference that outlives one full anti-entropy pass (plus the consumers'
lag) is worth a look.

The owners' databases (registry, pledges) must exist. A consumer whose database does not exist (no
collection in it: the service is not deployed there, or has never started) is skipped, not compared: its
views would otherwise show every aggregate as missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from ksbb_contracts.events.pledges import ledger_figures_digest
from ksbb_contracts.events.registry import NeedPublic, OrganisationPublic, RecipientPublic, public_state_digest
from pydantic import BaseModel, ValidationError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_kit.outbox import OUTBOX
from ksbb_kit.reconcile_blocking import BlockingView, blocking_views, same_blocking
from ksbb_kit.reconcile_pledges import DonorView, PledgeView, donor_views, pledge_views, same_donor, same_pledge

FIGURES = ("requested", "committed", "in_transit", "delivered")


@dataclass(frozen=True)
class LedgerView:
    """One service's view of a need's ledger: its version, figures and their digest."""

    version: int
    figures: tuple[int, int, int, int]

    @property
    def digest(self) -> str:
        """The digest of the figures (the one the owner publishes)."""
        return ledger_figures_digest(*self.figures)

    def as_dict(self) -> dict[str, Any]:
        """The view as JSON-ready values."""
        return {"version": self.version, "digest": self.digest, **dict(zip(FIGURES, self.figures, strict=True))}


@dataclass(frozen=True)
class StateView:
    """One service's view of an aggregate's public state: the version it holds and the state's digest
    (None: the view keeps no digest yet, or the owner's document is not a valid state)."""

    version: int
    digest: str | None

    def as_dict(self) -> dict[str, Any]:
        """The view as JSON-ready values."""
        return {"version": self.version, "digest": self.digest}


def same_state(owner: StateView, view: StateView) -> bool:
    """Whether a view shows the owner's public state (the digests agree; versions may legitimately differ)."""
    return owner.digest is not None and owner.digest == view.digest


View = TypeVar("View", LedgerView, StateView, PledgeView, DonorView, BlockingView)

#: Services that own aggregates: `ksbb reconcile` needs their databases.
OWNERS = ("registry", "pledges")
#: Services that only hold views: compared when their database exists, skipped otherwise.
CONSUMERS = ("publisher", "notifier")


@dataclass(frozen=True)
class Difference:
    """An aggregate whose view in a consumer differs from its owner's (None: that side has none)."""

    aggregate: str
    aggregate_id: str
    owner: str
    view: str
    owner_state: dict[str, Any] | None
    view_state: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """The difference as JSON-ready values."""
        return asdict(self)


def _view(version: Any, source: Mapping[str, Any]) -> LedgerView:
    return LedgerView(int(version or 0), tuple(int(source.get(k) or 0) for k in FIGURES))  # type: ignore[arg-type]


def compare_views(
    aggregate: str,
    owner: str,
    owned: Mapping[str, View],
    views: Mapping[str, Mapping[str, View]],
    same: Callable[[View, View], bool] | None = None,
) -> list[Difference]:
    """Every (aggregate, consumer) whose view differs from the owner's (`same`; by default equal version and
    digest), ordered by view and id."""
    found: list[Difference] = []
    for view_name, held in sorted(views.items()):
        for aggregate_id in sorted(set(owned) | set(held)):
            mine, theirs = owned.get(aggregate_id), held.get(aggregate_id)
            if mine is not None and theirs is not None and (same(mine, theirs) if same else mine == theirs):
                continue
            found.append(Difference(aggregate, aggregate_id, owner, view_name,
                                    mine.as_dict() if mine else None, theirs.as_dict() if theirs else None))
    return found


async def need_ledger_views(
    pledges_db: AsyncDatabase[dict[str, Any]],
    registry_db: AsyncDatabase[dict[str, Any]],
    publisher_db: AsyncDatabase[dict[str, Any]] | None,
) -> tuple[dict[str, LedgerView], dict[str, dict[str, LedgerView]]]:
    """The pledges service's ledgers and the registry's and (when given) publisher's views of them (announced
    ones only)."""
    owned: dict[str, LedgerView] = {}
    fields = {"ledger_version": 1, **dict.fromkeys(FIGURES, 1)}
    async for doc in pledges_db["ledgers"].find({"ledger_version": {"$gte": 1}}, fields):
        owned[doc["_id"]] = _view(doc["ledger_version"], doc)
    registry: dict[str, LedgerView] = {}
    async for doc in registry_db["needs"].find({"ledger.ledger_version": {"$gte": 1}}, {"ledger": 1}):
        registry[doc["_id"]] = _view(doc["ledger"]["ledger_version"], doc["ledger"])
    if publisher_db is None:
        return owned, {"registry": registry}
    publisher: dict[str, LedgerView] = {}
    async for doc in publisher_db["needs"].find({"ledger_version": {"$gte": 1}}, {"ledger_version": 1, "progress": 1}):
        publisher[doc["_id"]] = _view(doc["ledger_version"], doc.get("progress") or {})
    return owned, {"registry": registry, "publisher": publisher}


def _state(version: Any, snapshot: type[BaseModel], doc: Mapping[str, Any], id_field: str) -> StateView:
    try:
        digest: str | None = public_state_digest(snapshot.model_validate({**doc, id_field: doc["_id"]}))
    except ValidationError:
        digest = None  # not a valid public state: shown as a difference
    return StateView(int(version or 0), digest)


async def registry_state_views(
    registry_db: AsyncDatabase[dict[str, Any]],
    publisher_db: AsyncDatabase[dict[str, Any]] | None,
    pledges_db: AsyncDatabase[dict[str, Any]] | None = None,
    notifier_db: AsyncDatabase[dict[str, Any]] | None = None,
) -> dict[str, tuple[dict[str, StateView], dict[str, dict[str, StateView]]]]:
    """Per aggregate (`need`, `recipient`, `organisation`): the registry's public states and the given consumers'
    views of them (the publisher's read models; the pledges service's and the notifier's replicas of recipients
    and organisations)."""
    found: dict[str, tuple[dict[str, StateView], dict[str, dict[str, StateView]]]] = {}
    hidden = {OUTBOX: 0, "audit": 0}
    publisher = {"publisher": publisher_db} if publisher_db is not None else {}
    replicas = {name: db for name, db in (("pledges", pledges_db), ("notifier", notifier_db)) if db is not None}
    for aggregate, collection, snapshot, id_field, consumers in (
        ("need", "needs", NeedPublic, "need_id", publisher),
        ("recipient", "recipients", RecipientPublic, "recipient_id", {**publisher, **replicas}),
        ("organisation", "organisations", OrganisationPublic, "organisation_id", {**publisher, **replicas}),
    ):
        owned = {
            doc["_id"]: _state(doc.get("version"), snapshot, doc, id_field)
            async for doc in registry_db[collection].find({}, hidden)
        }
        # A replica a contact event created before its first snapshot holds no version: not a view yet.
        views = {
            name: {
                doc["_id"]: StateView(int(doc["version"]), doc.get("state_digest"))
                async for doc in db[collection].find({"version": {"$gte": 1}}, {"version": 1, "state_digest": 1})
            }
            for name, db in consumers.items()
        }
        found[aggregate] = owned, views
    return found


def database_name(service: str, prefix: str = "") -> str:
    """A service's database under a namespace prefix (tests), as `KitSettings.database_name` builds it."""
    return f"{prefix.replace('.', '_')}ksbb_{service}"


@dataclass(frozen=True)
class Skipped:
    """A consumer whose views were not compared, and why."""

    view: str
    database: str
    skipped: str = "no database"

    def as_dict(self) -> dict[str, Any]:
        """The skip as JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True)
class Reconciliation:
    """What `ksbb reconcile` found: the differences, and the consumers it skipped."""

    differences: list[Difference]
    skipped: list[Skipped]


class OwnerDatabaseMissing(RuntimeError):
    """An owner's database does not exist: nothing can be compared with it (a wrong URL or prefix?)."""


async def _exists(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether a database exists: it has a collection (MongoDB creates a database with its first one)."""
    return bool(await db.list_collection_names())


async def check(
    mongodb_url: str, *, prefix: str = "", service_urls: Mapping[str, str] | None = None
) -> Reconciliation:
    """Every difference between the owners' and the consumers' views (need ledgers, needs, recipients,
    organisations, the ledgers' recipient blocking, pledges, donor profiles), and the consumers skipped.

    Each service's database is read on `mongodb_url`, or on its own server when `service_urls` names one.
    Raises `OwnerDatabaseMissing` when the registry's or the pledges service's database does not exist.
    """
    services = (*OWNERS, *CONSUMERS)
    urls = {service: (service_urls or {}).get(service, mongodb_url) for service in services}
    clients: dict[str, AsyncMongoClient[dict[str, Any]]] = {url: AsyncMongoClient(url) for url in set(urls.values())}
    try:
        dbs = {service: clients[urls[service]][database_name(service, prefix)] for service in services}
        present = {service: db for service, db in dbs.items() if await _exists(db)}
        missing = [service for service in OWNERS if service not in present]
        if missing:
            raise OwnerDatabaseMissing(", ".join(f"{dbs[s].name} ({s})" for s in missing) + " does not exist")
        skipped = [Skipped(service, dbs[service].name) for service in CONSUMERS if service not in present]
        registry, pledges = present["registry"], present["pledges"]
        publisher, notifier = present.get("publisher"), present.get("notifier")
        owned, views = await need_ledger_views(pledges, registry, publisher)
        states = await registry_state_views(registry, publisher, pledges, notifier)
        owned_blocking, blocking_held = await blocking_views(registry, pledges)
        pledges_held: tuple[dict[str, PledgeView], dict[str, dict[str, PledgeView]]] = ({}, {})
        donors_held: tuple[dict[str, DonorView], dict[str, dict[str, DonorView]]] = ({}, {})
        if publisher is not None:
            pledges_held = await pledge_views(pledges, publisher)
            donors_held = await donor_views(pledges, publisher)
    finally:
        for client in clients.values():
            await client.close()
    # A need the registry or publisher holds without any ledger at the owner is a difference too.
    found = compare_views("need_ledger", "pledges", owned, views)
    for aggregate, (registry_owned, registry_views) in states.items():
        found += compare_views(aggregate, "registry", registry_owned, registry_views, same_state)
    found += compare_views("recipient_blocking", "registry", owned_blocking, blocking_held, same_blocking)
    found += compare_views("pledge", "pledges", *pledges_held, same_pledge)
    found += compare_views("donor", "pledges", *donors_held, same_donor)
    return Reconciliation(found, skipped)


async def reconcile(
    mongodb_url: str, *, prefix: str = "", service_urls: Mapping[str, str] | None = None
) -> list[Difference]:
    """Every difference between the owners' and the consumers' views (`check`, without the skipped consumers)."""
    return (await check(mongodb_url, prefix=prefix, service_urls=service_urls)).differences
