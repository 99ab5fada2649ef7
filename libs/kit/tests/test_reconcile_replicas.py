"""`ksbb reconcile` compares the notifier's recipient and organisation replicas and the recipient blocking on each
pledges ledger with the registry, on the real database server; a consumer without a database is skipped."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest
from ksbb_contracts.events.registry import OrganisationPublic, RecipientPublic, public_state_digest
from ksbb_contracts.vocab import OrganisationStatus, RecipientStatus
from ksbb_kit.reconcile import Skipped, check, database_name
from ksbb_kit.reconcile_blocking import BlockingView, registry_blocking, same_blocking
from ksbb_kit.testing.factories import organisation_public, recipient_public
from ksbb_kit.testing.infra import Infra
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.integration

ORGANISATIONS = [
    organisation_public(organisation_id="org-1", version=3),
    organisation_public(organisation_id="org-2", name="Yayasan Kedua", status=OrganisationStatus.SUSPENDED, version=5),
]
RECIPIENTS = [
    recipient_public(recipient_id="rcp-active", organisation_id="org-1", version=4),
    recipient_public(recipient_id="rcp-suspended", organisation_id="org-2", status=RecipientStatus.SUSPENDED,
                     version=6),
]
#: need id -> its recipient.
LEDGERS = {"need-a": RECIPIENTS[0], "need-b": RECIPIENTS[0], "need-c": RECIPIENTS[1]}


def _stored(snapshot: OrganisationPublic | RecipientPublic, id_field: str) -> dict[str, Any]:
    """A registry document: the public state under `_id`, plus what the registry keeps besides."""
    data = snapshot.model_dump(mode="json")
    return {"_id": data.pop(id_field), **data, "audit": [{"action": "created"}], "contact": {"name": "Rahasia"}}


async def _plant(mongo: AsyncMongoClient[dict[str, Any]], prefix: str, *, notifier: bool) -> None:
    """The registry's organisations and recipients, and views of them that agree: the pledges service's replicas
    and ledgers and (when asked) the notifier's replicas."""
    registry = mongo[database_name("registry", prefix)]
    pledges = mongo[database_name("pledges", prefix)]
    await registry.organisations.insert_many([_stored(o, "organisation_id") for o in ORGANISATIONS])
    await registry.recipients.insert_many([_stored(r, "recipient_id") for r in RECIPIENTS])
    replicas = [pledges] + ([mongo[database_name("notifier", prefix)]] if notifier else [])
    for db in replicas:
        await db.organisations.insert_many([
            {"_id": o.organisation_id, "name": o.name, "status": o.status.value, "version": o.version,
             "state_digest": public_state_digest(o)} for o in ORGANISATIONS])
        await db.recipients.insert_many([
            {"_id": r.recipient_id, "name": r.name, "status": r.status.value, "version": r.version,
             "state_digest": public_state_digest(r)} for r in RECIPIENTS])
    await pledges.ledgers.insert_many([
        {"_id": need_id, "recipient_id": r.recipient_id, "recipient_version": r.version,
         "recipient_digest": public_state_digest(r), "recipient_blocked": r.status == RecipientStatus.SUSPENDED,
         "ledger_version": 0, "requested": 0, "committed": 0, "in_transit": 0, "delivered": 0, "rev": 1}
        for need_id, r in LEDGERS.items()])


async def _cli(infra: Infra, prefix: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run the real `ksbb reconcile`: its exit code, its stdout as JSON lines, and its stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ksbb_kit.cli", "reconcile", "--prefix", prefix, "--mongodb", infra.mongodb_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return int(process.returncode or 0), [json.loads(line) for line in out.decode().splitlines()], err.decode()


async def test_planted_divergence_in_the_notifier_s_replicas_and_a_ledger_s_blocking_is_reported_exactly(
    infra: Infra, namespace: str
) -> None:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
    try:
        await _plant(mongo, namespace, notifier=True)
        found = await check(infra.mongodb_url, prefix=namespace)
        assert found.differences == []
        assert found.skipped == [Skipped("publisher", database_name("publisher", namespace))]
        code, lines, err = await _cli(infra, namespace)
        assert (code, lines) == (0, []), err
        assert json.dumps({"view": "publisher", "database": database_name("publisher", namespace),
                           "skipped": "no database"}) in err.splitlines()

        notifier = mongo[database_name("notifier", namespace)]
        pledges = mongo[database_name("pledges", namespace)]
        active, suspended = RECIPIENTS
        # The notifier holds, at the registry's version, a recipient state the registry lost in a crash ...
        await notifier.recipients.update_one({"_id": active.recipient_id}, {"$set": {"state_digest": "lost-0001"}})
        # ... a recipient ahead of the registry (a change it lost and never repeated) ...
        await notifier.recipients.update_one({"_id": suspended.recipient_id}, {"$set": {
            "status": "active", "version": suspended.version + 1, "state_digest": "lost-0002"}})
        # ... and lacks an organisation.
        await notifier.organisations.delete_one({"_id": "org-2"})
        # One ledger of the active recipient is blocked at the registry's snapshot; another keeps another state.
        await pledges.ledgers.update_one({"_id": "need-a"}, {"$set": {"recipient_blocked": True}})
        await pledges.ledgers.update_one({"_id": "need-c"}, {"$set": {"recipient_digest": "lost-0003"}})
    finally:
        await mongo.close()

    code, lines, err = await _cli(infra, namespace)
    assert code == 1, err
    assert [(d["aggregate"], d["aggregate_id"], d["view"]) for d in lines] == [
        ("recipient", "rcp-active", "notifier"),
        ("recipient", "rcp-suspended", "notifier"),
        ("organisation", "org-2", "notifier"),
        ("recipient_blocking", "need-a", "pledges"),
        ("recipient_blocking", "need-c", "pledges"),
    ]
    by_id = {d["aggregate_id"]: d for d in lines}
    assert by_id["rcp-active"]["owner_state"] == {"version": 4, "digest": public_state_digest(active)}
    assert by_id["rcp-active"]["view_state"] == {"version": 4, "digest": "lost-0001"}
    assert by_id["rcp-suspended"]["view_state"] == {"version": 7, "digest": "lost-0002"}
    assert by_id["org-2"]["view_state"] is None
    assert by_id["need-a"]["owner"] == "registry"
    assert by_id["need-a"]["owner_state"] == {"recipient_id": "rcp-active", "version": 4,
                                              "digest": public_state_digest(active), "blocked": False}
    assert by_id["need-a"]["view_state"]["blocked"] is True
    assert by_id["need-c"]["view_state"]["digest"] == "lost-0003" and by_id["need-c"]["view_state"]["blocked"]


async def test_a_notifier_without_a_database_is_skipped_not_reported_and_a_missing_owner_fails(
    infra: Infra, namespace: str
) -> None:
    code, lines, err = await _cli(infra, namespace)
    assert (code, lines) == (2, []), err
    assert database_name("registry", namespace) in err and database_name("pledges", namespace) in err

    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
    try:
        await _plant(mongo, namespace, notifier=False)
    finally:
        await mongo.close()
    code, lines, err = await _cli(infra, namespace)
    assert (code, lines) == (0, []), err
    skipped = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert skipped == [
        {"view": "publisher", "database": database_name("publisher", namespace), "skipped": "no database"},
        {"view": "notifier", "database": database_name("notifier", namespace), "skipped": "no database"},
    ]


def test_a_ledger_is_blocked_exactly_while_its_recipient_is_suspended_or_archived() -> None:
    for status in RecipientStatus:
        recipient = recipient_public(status=status)
        owner = registry_blocking(_stored(recipient, "recipient_id"))
        assert owner.blocked == (status in (RecipientStatus.SUSPENDED, RecipientStatus.ARCHIVED)), status
        kept = BlockingView(recipient.recipient_id, 1, public_state_digest(recipient), owner.blocked)
        assert same_blocking(owner, kept), "the version is shown, not compared"
        assert not same_blocking(owner, BlockingView(recipient.recipient_id, 1, kept.digest, not owner.blocked))
        assert not same_blocking(owner, BlockingView("another", 1, kept.digest, owner.blocked))
    invalid = registry_blocking({"_id": "broken", "status": "active", "version": 2})
    assert invalid.digest is None and not same_blocking(invalid, BlockingView("broken", 2, None, False))
