"""Self-healing of pledges and donor profiles: the publisher's views converge on the pledges service's, whatever
diverged (planted deterministically) — a pledge answered 201 the view lost, another status and quantity at the
same version, a version the owner no longer has, a donor's other name or lost profile — through the pledges
service's anti-entropy passes, without a feed entry for the restatements."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.reconcile import database_name
from ksbb_kit.testing.waiting import eventually
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from .conftest import bearer, platform

pytestmark = pytest.mark.e2e

VIEW = "publisher.pledges.version"


def repairs(reason: str) -> float:
    """How many times this process repaired the publisher's pledges for a reason (`ksbb_view_repairs_total`)."""
    return REGISTRY.get_sample_value("ksbb_view_repairs_total", {"view": VIEW, "reason": reason}) or 0.0


async def test_a_lost_pledge_one_at_its_version_with_other_state_and_one_ahead_of_the_owner_are_repaired(
    kit_env: dict[str, Any], dev_issuer: DevIssuer
) -> None:
    async with platform(kit_env, dev_issuer) as running:
        [need_id] = await running.seed_needs(1, quantity=50)
        pledge_ids = []
        for quantity, donor in ((5, "donor-lost"), (4, "donor-other"), (3, "donor-ahead")):
            answered = await running.pledge(need_id, quantity, donor=donor)
            assert answered.status_code == 201, answered.text
            pledge_ids.append(answered.json()["pledge_id"])
        lost, other, ahead = pledge_ids

        async def agree() -> bool:
            return await running.differences() == []

        await eventually(agree, within=60, what="the publisher shows the pledges service's pledges")
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(running.mongodb_url)
        publisher_db = mongo[database_name("publisher", running.prefix)]
        try:
            feed_before = await publisher_db.feed.count_documents({"pledge_id": {"$in": pledge_ids}})
            assert feed_before == 3, "one feed entry per pledge made"
            held = {d["_id"]: d async for d in publisher_db.pledges.find({"_id": {"$in": pledge_ids}})}
            # `lost`: answered 201, yet the publisher's database lost it in a crash.
            await publisher_db.pledges.delete_one({"_id": lost})
            # `other`: at the owner's version, a state the owner no longer has (cancelled, another quantity).
            await publisher_db.pledges.update_one({"_id": other}, {"$set": {
                "status": "cancelled", "quantity": 9, "state_digest": "lost-pledge-0001"}})
            # `ahead`: a newer version the owner lost and never repeated (confirmed).
            await publisher_db.pledges.update_one({"_id": ahead}, {"$set": {
                "status": "confirmed", "version": held[ahead]["version"] + 2, "state_digest": "lost-pledge-0002"}})
        finally:
            await mongo.close()

        code, output = await running.reconcile_cli()
        assert code == 1, output
        differing = [line for line in output.splitlines() if '"aggregate": "pledge"' in line]
        assert len(differing) == 3, output
        assert {(d.aggregate, d.aggregate_id, d.view) for d in await running.differences()} == {
            ("pledge", lost, "publisher"), ("pledge", other, "publisher"), ("pledge", ahead, "publisher")}

        same_before, restated_before = repairs("same_version_other_figures"), repairs("restated")
        assert await running.pledges_service.pledge_restatement.run_pass() == 3
        await eventually(agree, within=60, what="every pledge view repaired by the owner's restatements")
        assert repairs("same_version_other_figures") == same_before + 1
        assert repairs("restated") == restated_before + 1
        code, output = await running.reconcile_cli()
        assert code == 0, output

        mongo = AsyncMongoClient(running.mongodb_url)
        publisher_db = mongo[database_name("publisher", running.prefix)]
        try:
            repaired = {d["_id"]: d async for d in publisher_db.pledges.find({"_id": {"$in": pledge_ids}})}
            assert {pledge_id: (d["status"], d["quantity"]) for pledge_id, d in repaired.items()} == {
                lost: ("pledged", 5), other: ("pledged", 4), ahead: ("pledged", 3)}
            # A repair updates the view; the feed shows only real changes.
            assert await publisher_db.feed.count_documents({"pledge_id": {"$in": pledge_ids}}) == feed_before
        finally:
            await mongo.close()


async def test_a_donor_profile_at_its_version_with_another_name_or_lost_by_the_publisher_is_repaired(
    kit_env: dict[str, Any], dev_issuer: DevIssuer
) -> None:
    async with platform(kit_env, dev_issuer) as running:
        donor_ids = []
        for subject, name in (("donor-renamed", "Toko Berkah"), ("donor-forgotten", "Warung Sejahtera")):
            put = await running.pledges.put("/v1/donors/me", headers=bearer(running.issuer, Role.DONOR,
                                                                            subject=subject),
                                            json={"kind": "company", "display_name": name, "show_name": True})
            assert put.status_code == 200, put.text
            donor_ids.append(put.json()["donor_id"])
        renamed, forgotten = donor_ids

        async def agree() -> bool:
            return await running.differences() == []

        await eventually(agree, within=60, what="the publisher shows the donors' profiles")
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(running.mongodb_url)
        publisher_db = mongo[database_name("publisher", running.prefix)]
        try:
            # `renamed`: at the owner's version, a name the owner no longer has; `forgotten`: lost in a crash.
            await publisher_db.donors.update_one({"_id": renamed}, {"$set": {
                "display_name": "Nama Yang Hilang", "state_digest": "lost-donor-0001"}})
            await publisher_db.donors.delete_one({"_id": forgotten})
        finally:
            await mongo.close()

        assert {(d.aggregate, d.aggregate_id, d.view) for d in await running.differences()} == {
            ("donor", renamed, "publisher"), ("donor", forgotten, "publisher")}
        code, output = await running.reconcile_cli()
        assert code == 1, output
        view = "publisher.donors.version"
        before = REGISTRY.get_sample_value(
            "ksbb_view_repairs_total", {"view": view, "reason": "same_version_other_figures"}) or 0.0
        assert await running.pledges_service.donor_restatement.run_pass() == 2
        await eventually(agree, within=60, what="the donors' views repaired by the owner's restatements")
        after = REGISTRY.get_sample_value(
            "ksbb_view_repairs_total", {"view": view, "reason": "same_version_other_figures"}) or 0.0
        assert after == before + 1
        mongo = AsyncMongoClient(running.mongodb_url)
        try:
            names = {d["_id"]: d["display_name"] async for d in
                     mongo[database_name("publisher", running.prefix)].donors.find({"_id": {"$in": donor_ids}})}
        finally:
            await mongo.close()
        assert names == {renamed: "Toko Berkah", forgotten: "Warung Sejahtera"}
        code, output = await running.reconcile_cli()
        assert code == 0, output
