"""Self-healing of the registry's public state: the publisher's views of needs, recipients and organisations and
the pledges service's replicas of recipients (with the blocking its ledgers keep) and organisations converge on
the registry's, whatever diverged (planted deterministically), through the registry's anti-entropy pass."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_kit.auth import DevIssuer
from ksbb_kit.reconcile import database_name
from ksbb_kit.testing.waiting import eventually
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from .conftest import Platform, platform

pytestmark = pytest.mark.e2e


def repairs(view: str, reason: str) -> float:
    """How many times this process repaired a view for a reason (`ksbb_view_repairs_total`)."""
    return REGISTRY.get_sample_value("ksbb_view_repairs_total", {"view": view, "reason": reason}) or 0.0


async def public_quantities(running: Platform, need_ids: list[str]) -> list[int]:
    """Each need's quantity as the publisher's public API shows it."""
    return [(await running.publisher.get(f"/v1/public/needs/{need_id}")).json()["quantity"] for need_id in need_ids]


async def test_a_need_s_public_state_reused_at_its_version_or_ahead_of_the_registry_is_repaired(
    kit_env: dict[str, Any], dev_issuer: DevIssuer
) -> None:
    async with platform(kit_env, dev_issuer) as running:
        same, ahead = await running.seed_needs(2, quantity=50)

        async def agree() -> bool:
            return await running.differences() == []

        await eventually(agree, within=60, what="the publisher shows the registry's needs and recipient")
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(running.mongodb_url)
        registry_db = mongo[database_name("registry", running.prefix)]
        publisher_db = mongo[database_name("publisher", running.prefix)]
        pledges_db = mongo[database_name("pledges", running.prefix)]
        try:
            versions = {d["_id"]: d["version"] async for d in registry_db.needs.find({}, {"version": 1})}
            [recipient] = [d async for d in registry_db.recipients.find({}, {"version": 1})]
            # `same`: the publisher holds, at the registry's version, a state the registry lost in a crash.
            await publisher_db.needs.update_one({"_id": same}, {"$set": {
                "quantity": 70, "version": versions[same], "state_digest": "lost-state-0001"}})
            # `ahead`: the publisher holds a newer version the registry no longer has, and gets no new change.
            await publisher_db.needs.update_one({"_id": ahead}, {"$set": {
                "quantity": 90, "version": versions[ahead] + 3, "state_digest": "lost-state-0002"}})
            # The recipient: other beneficiaries at the version the registry holds.
            await publisher_db.recipients.update_one({"_id": recipient["_id"]}, {"$set": {
                "beneficiaries.households": 7, "version": recipient["version"], "state_digest": "lost-state-0003"}})
            # The pledges service's replica of `same`: other terms (not figures) than the registry's.
            await pledges_db.ledgers.update_one({"_id": same}, {"$set": {"priority": "low", "need_digest": "lost"}})
        finally:
            await mongo.close()

        assert await public_quantities(running, [same, ahead]) == [70, 90]
        code, output = await running.reconcile_cli()
        assert code == 1, output
        assert {(d.aggregate, d.aggregate_id, d.view) for d in await running.differences()} == {
            ("need", same, "publisher"), ("need", ahead, "publisher"), ("recipient", recipient["_id"], "publisher")}

        same_before = repairs("publisher.needs.version", "same_version_other_figures")
        restated_before = repairs("publisher.needs.version", "restated")
        recipient_before = repairs("publisher.recipients.version", "same_version_other_figures")
        [needs_job, recipients_job, _] = running.registry_restatements
        assert await needs_job.run_pass() == 2
        assert await recipients_job.run_pass() == 1
        await eventually(agree, within=60, what="every view repaired by the registry's restated states")
        assert await public_quantities(running, [same, ahead]) == [50, 50]
        assert repairs("publisher.needs.version", "same_version_other_figures") == same_before + 1
        assert repairs("publisher.needs.version", "restated") == restated_before + 1
        assert repairs("publisher.recipients.version", "same_version_other_figures") == recipient_before + 1
        code, output = await running.reconcile_cli()
        assert code == 0, output

        async def replica_priority() -> str:
            mongo_again: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(running.mongodb_url)
            try:
                ledger = await mongo_again[database_name("pledges", running.prefix)].ledgers.find_one({"_id": same})
            finally:
                await mongo_again.close()
            return str((ledger or {}).get("priority"))

        await eventually(lambda: _is_high(replica_priority), within=60, what="the pledges replica repaired")


async def _is_high(priority: Any) -> bool:
    return await priority() == "high"


async def test_organisations_and_the_pledges_recipient_replica_reused_at_their_version_or_ahead_are_repaired(
    kit_env: dict[str, Any], dev_issuer: DevIssuer
) -> None:
    async with platform(kit_env, dev_issuer, notifier=True) as running:
        [need_id] = await running.seed_needs(1, quantity=50)

        async def agree() -> bool:
            return await running.differences() == []

        await eventually(agree, within=60, what="every view shows the registry's state")
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(running.mongodb_url)
        registry_db = mongo[database_name("registry", running.prefix)]
        publisher_db = mongo[database_name("publisher", running.prefix)]
        pledges_db = mongo[database_name("pledges", running.prefix)]
        notifier_db = mongo[database_name("notifier", running.prefix)]
        try:
            [organisation] = [d async for d in registry_db.organisations.find({}, {"version": 1})]
            [recipient] = [d async for d in registry_db.recipients.find({}, {"version": 1})]
            org_id, recipient_id = organisation["_id"], recipient["_id"]
            # The publisher holds, at the registry's version, a name the registry lost in a crash.
            await publisher_db.organisations.update_one({"_id": org_id}, {"$set": {
                "name": "Nama Yang Hilang", "state_digest": "lost-state-0011"}})
            # The pledges replica of the organisation is ahead: a suspension the registry lost and never repeated.
            await pledges_db.organisations.update_one({"_id": org_id}, {"$set": {
                "status": "suspended", "version": organisation["version"] + 1, "state_digest": "lost-state-0012"}})
            # The pledges replica of the recipient: other households at the version the registry holds ...
            await pledges_db.recipients.update_one({"_id": recipient_id}, {"$set": {
                "households": 7, "state_digest": "lost-state-0013"}})
            # ... and the need's ledger is ahead: it saw the recipient suspended (blocked) at a lost version.
            await pledges_db.ledgers.update_one({"_id": need_id}, {"$inc": {"rev": 1}, "$set": {
                "recipient_blocked": True, "recipient_version": recipient["version"] + 1,
                "recipient_digest": "lost-state-0014"}})
            # The notifier's replicas: the organisation other at the registry's version, the recipient ahead.
            await notifier_db.organisations.update_one({"_id": org_id}, {"$set": {
                "name": "Nama Yang Hilang", "state_digest": "lost-state-0015"}})
            await notifier_db.recipients.update_one({"_id": recipient_id}, {"$set": {
                "status": "suspended", "version": recipient["version"] + 1, "state_digest": "lost-state-0016"}})
        finally:
            await mongo.close()

        refused = await running.pledge(need_id, 5, donor="donor-blocked")
        assert refused.status_code == 409, refused.text
        code, output = await running.reconcile_cli()
        assert code == 1, output
        assert {(d.aggregate, d.aggregate_id, d.view) for d in await running.differences()} == {
            ("organisation", org_id, "publisher"), ("organisation", org_id, "pledges"),
            ("recipient", recipient_id, "pledges"), ("recipient_blocking", need_id, "pledges"),
            ("organisation", org_id, "notifier"), ("recipient", recipient_id, "notifier")}

        counters = {
            ("publisher.organisations.version", "same_version_other_figures"): 1,
            ("pledges.organisations", "restated"): 1,
            ("pledges.recipients", "same_version_other_figures"): 1,
            ("pledges.ledgers.recipient_version", "restated"): 1,
            ("notifier.organisations", "same_version_other_figures"): 1,
            ("notifier.recipients", "restated"): 1,
        }
        before = {key: repairs(*key) for key in counters}
        [_, recipients_job, organisations_job] = running.registry_restatements
        assert await recipients_job.run_pass() == 1
        assert await organisations_job.run_pass() == 1
        await eventually(agree, within=60, what="every view repaired by the registry's restated states")

        async def ledger_unblocked() -> bool:
            return (await running.pledge(need_id, 5, donor="donor-after-repair")).status_code == 201

        await eventually(ledger_unblocked, within=60, what="the ledger takes pledges again")
        assert {key: repairs(*key) - before[key] for key in counters} == counters
        public = (await running.publisher.get("/v1/public/organisations")).json()
        assert [o["name"] for o in public if o["organisation_id"] == org_id] == [
            "Lembaga Tahan Banting"]
        code, output = await running.reconcile_cli()
        assert code == 0, output
