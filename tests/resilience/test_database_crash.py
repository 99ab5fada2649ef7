"""Self-healing after crashes: consumers' views of the need ledgers converge on the owner's, whatever diverged.

Two ways a view diverges: the owner loses acknowledged writes and reuses a version with other figures (a
consumer that saw the lost version must not skip the new one), or the owner ends up behind what consumers
saw and stays there (only its anti-entropy job, re-publishing current state, repairs that). One test plants
both deterministically; one kills the owner's database server (`kill -9`) under load and restarts it on its files;
one shows the on-disk backend, committing per write, loses no acknowledged write; one that a kill under
concurrent writes leaves every unique index in step with its documents (a write is lost whole or kept whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from typing import Any

import pytest
from ksbb_contracts import topics
from ksbb_contracts.events.pledges import ledger_figures_digest
from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.reconcile import database_name
from ksbb_kit.testing.waiting import eventually, finish_within
from ksbb_pledges.app.recovery import RECOVERED_VIEW, RECOVERY_JOB
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from .conftest import OwnMongo, Platform, bearer, platform

pytestmark = pytest.mark.e2e


def repairs(view: str, reason: str) -> float:
    """How many times this process repaired a view for a reason (`ksbb_view_repairs_total`)."""
    return REGISTRY.get_sample_value("ksbb_view_repairs_total", {"view": view, "reason": reason}) or 0.0


async def figures_agree(running: Platform, need_ids: list[str]) -> bool:
    """Whether the registry's and the publisher's figures equal the ledger's for every need (over the APIs)."""
    for need_id in need_ids:
        shown = await running.figures(need_id)
        if not shown["pledges"] == shown["registry"] == shown["publisher"]:
            return False
    return True


async def test_a_reused_version_and_a_view_ahead_of_its_owner_are_both_repaired(
    kit_env: dict[str, Any], dev_issuer: DevIssuer
) -> None:
    # The anti-entropy job runs once at start (nothing to do yet) and then only when this test asks.
    async with platform(kit_env, dev_issuer, restate_interval_seconds=3600) as running:
        reused, ahead, behind = await running.seed_needs(3, quantity=50)
        for index, need_id in enumerate((reused, ahead, behind)):
            assert (await running.pledge(need_id, 2 + index, f"donor-{index}")).status_code == 201
        await eventually(lambda: figures_agree(running, [reused, ahead, behind]), within=60,
                         what="every view follows the ledger")
        assert await running.differences() == []

        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(running.mongodb_url)
        registry_db = mongo[database_name("registry", running.prefix)]
        publisher_db = mongo[database_name("publisher", running.prefix)]
        owner_db = mongo[database_name("pledges", running.prefix)]
        try:
            versions = {d["_id"]: d["ledger_version"] async for d in owner_db.ledgers.find({}, {"ledger_version": 1})}
            # `reused`: both consumers saw a next version the owner then lost (its event was out, the write not).
            lost = {"requested": 50, "committed": 40, "in_transit": 0, "delivered": 0}
            await registry_db.needs.update_one({"_id": reused}, {"$set": {
                "ledger": {**lost, "ledger_version": versions[reused] + 1}}})
            await publisher_db.needs.update_one({"_id": reused}, {"$set": {
                "progress": lost, "ledger_version": versions[reused] + 1,
                "ledger_digest": ledger_figures_digest(*lost.values())}})
            # `ahead`: the publisher holds figures of versions the owner no longer has, and it gets no new change.
            await publisher_db.needs.update_one({"_id": ahead}, {"$set": {
                "progress.committed": 33, "ledger_version": versions[ahead] + 3,
                "ledger_digest": ledger_figures_digest(50, 33, 0, 0)}})
            # `behind`: the registry's figures differ at the version the owner holds.
            await registry_db.needs.update_one({"_id": behind}, {"$set": {"ledger.committed": 1}})
        finally:
            await mongo.close()

        code, output = await running.reconcile_cli()
        assert code == 1, output
        assert {(d.aggregate_id, d.view) for d in await running.differences()} == {
            (reused, "registry"), (reused, "publisher"), (ahead, "publisher"), (behind, "registry")}

        # The owner's next change reuses the lost version with other figures: both consumers take it.
        same_version_before = repairs("registry.needs.ledger", "same_version_other_figures")
        assert (await running.pledge(reused, 1, "donor-9")).status_code == 201

        async def reused_repaired() -> bool:
            return not any(d.aggregate_id == reused for d in await running.differences())

        await eventually(reused_repaired, within=60, what="the reused version repaired in both consumers")
        assert repairs("registry.needs.ledger", "same_version_other_figures") == same_version_before + 1
        assert {(d.aggregate_id, d.view) for d in await running.differences()} == {
            (ahead, "publisher"), (behind, "registry")}, "no change reaches the others: they stay diverged"

        # One anti-entropy pass re-publishes every ledger; the remaining views repair themselves.
        restated_before = repairs("publisher.needs.ledger_version", "restated")
        assert await running.pledges_service.restatement.run_pass() == 3
        await eventually(lambda: figures_agree(running, [reused, ahead, behind]), within=60,
                         what="every view repaired by the restated ledgers")
        await eventually(lambda: _no_differences(running), within=30, what="ksbb reconcile finds nothing")
        assert repairs("publisher.needs.ledger_version", "restated") == restated_before + 1
        code, output = await running.reconcile_cli()
        assert code == 0, output


def _all_repairs() -> float:
    """Every repaired view this process counted so far."""
    return sum(
        sample.value for metric in REGISTRY.collect() if metric.name == "ksbb_view_repairs"
        for sample in metric.samples if sample.name == "ksbb_view_repairs_total"
    )


def _all_recoveries() -> float:
    """Every pledge (or move) this process took back from its event after its database lost it."""
    return sum(
        sample.value for metric in REGISTRY.collect() if metric.name == "ksbb_view_repairs"
        for sample in metric.samples if sample.name == "ksbb_view_repairs_total"
        and sample.labels.get("view") == RECOVERED_VIEW
    )


async def _no_differences(running: Platform) -> bool:
    return await running.differences() == []


def _phase(started: float, what: str) -> None:
    """Say when a phase of a long test ended (shown with the failure when the test fails or times out)."""
    print(f"[{time.monotonic() - started:6.1f} s] {what}", flush=True)


# Late in a full run the broker holds thousands of partitions and every service start and group join is
# slower: the phases below are bounded one by one, this only stops a test that hangs.
@pytest.mark.timeout(900)
async def test_every_view_converges_after_the_database_server_is_killed_under_load(
    kit_env: dict[str, Any], dev_issuer: DevIssuer, own_mongo: OwnMongo
) -> None:
    # The owner's database server is killed; it commits about once a second (`delay`) so that the kill
    # really loses acknowledged writes whose events were already out. The consumers' databases live on.
    assert own_mongo.commit == "delay"
    async with platform(kit_env, dev_issuer, pledges_mongodb_url=own_mongo.url,
                        restate_interval_seconds=2, restate_page_size=3,
                        pledge_recovery_delay_seconds=3) as running:
        started = time.monotonic()
        _phase(started, "platform started")
        need_ids = await running.seed_needs(6, quantity=5000)
        _phase(started, "needs seeded")
        await asyncio.sleep(2.5)  # the set-up is on disk before the load starts
        accepted: dict[str, str] = {}  # pledge id -> donor
        # Few pledges after the restart: most needs end on a version the crash made diverge, so only the
        # repair rules and the anti-entropy job can make their views converge.
        before_kill, after_restart = 60, 6
        repaired_before = _all_repairs()
        recovered_before = _all_recoveries()
        stop = asyncio.Event()
        restarted = asyncio.Event()
        counter = itertools.count()

        async def donor(number: int) -> None:
            rng = random.Random(number)
            while not stop.is_set():
                need_id = need_ids[next(counter) % len(need_ids)]
                name = f"donor-{number}"
                try:
                    response = await running.pledge(need_id, rng.randint(1, 3), name)
                except Exception:  # the database is gone for a moment: the donor tries again
                    await asyncio.sleep(0.2)
                    continue
                if response.status_code == 201:
                    accepted[response.json()["pledge_id"]] = name
                else:
                    await asyncio.sleep(0.2)

        donors = [asyncio.create_task(donor(n), name=f"donor-{n}") for n in range(10)]
        try:
            await eventually(lambda: len(accepted) >= before_kill, within=180, what="pledges accepted before the kill")
            acknowledged_at_kill = len(accepted)
            own_mongo.kill()
            _phase(started, f"database server killed after {acknowledged_at_kill} pledges")
            await asyncio.sleep(1)
            await asyncio.to_thread(own_mongo.up)
            _phase(started, "database server restarted")
            restarted_at = time.monotonic()
            restarted.set()
            await eventually(lambda: len(accepted) >= acknowledged_at_kill + after_restart, within=180,
                             what="pledges accepted after the restart")
        finally:
            stop.set()
            # A pledge request that never answers would hang the test silently: fail with where it waits.
            await finish_within(donors, 60, what="donors (each stops after its pending pledge request)")
        _phase(started, f"load stopped after {len(accepted)} pledges")

        # A pledge the database lost after its event was out is taken back from its event (kept, or cancelled
        # with `lost_in_outage` when its units went to others meanwhile), so every view converges on the owner
        # with nothing dropped from any view. Only a pledge lost before its event went out is gone; no view
        # ever showed it (a real MongoDB with journaled majority writes never loses it).
        # Once the follower has read back every pledge event of the load, the owner holds every pledge a view
        # can show (and the views heard of what it took back): only then must they all agree with it.
        announced = await running.end_offsets(topics.PLEDGES.name)
        await eventually(lambda: running.group_reached(f"pledges-{RECOVERY_JOB}", announced), within=300, interval=1,
                         what="the pledges service read back every pledge event of the load")
        _phase(started, "every pledge event of the load read back")
        await eventually(lambda: _no_differences(running), within=300, interval=1,
                         what="ksbb reconcile finds no difference after the crash")
        converged_after = time.monotonic() - restarted_at
        _phase(started, "no differences")
        assert await figures_agree(running, need_ids)
        code, output = await running.reconcile_cli()
        assert code == 0, output
        recovered = _all_recoveries() - recovered_before
        lost = 0
        for pledge_id, name in accepted.items():
            found = await running.pledges.get(f"/v1/pledges/{pledge_id}",
                                              headers=bearer(dev_issuer, Role.DONOR, subject=name))
            assert found.status_code in (200, 404), found.text
            lost += found.status_code == 404
        assert lost + recovered > 0, "the kill lost no acknowledged write: it did not test recovery"
        print(f"\ndatabase crash: {len(accepted)} pledges acknowledged, {recovered:.0f} lost after their "
              f"events were out and taken back from them, {lost} lost before (in no view), views converged "
              f"{converged_after:.1f} s after the "
              f"restart, repairs {_all_repairs() - repaired_before:.0f}")


@pytest.mark.parametrize("own_mongo", ["per-write"], indirect=True)
async def test_the_on_disk_backend_committing_per_write_loses_no_acknowledged_write(own_mongo: OwnMongo) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(own_mongo.url)
    try:
        docs = client.crash.docs
        written = 0
        started = time.monotonic()
        while time.monotonic() - started < 2:
            await docs.insert_one({"_id": written})
            await docs.update_one({"_id": written}, {"$set": {"updated": True}})
            written += 1
    finally:
        await client.close()
    own_mongo.kill()  # right after the last acknowledgement
    await asyncio.sleep(0.5)
    await asyncio.to_thread(own_mongo.up)
    client = AsyncMongoClient(own_mongo.url)
    try:
        assert written > 0
        assert await client.crash.docs.count_documents({"updated": True}) == written
    finally:
        await client.close()


@pytest.mark.parametrize("own_mongo", ["per-write", "delay"], indirect=True)
async def test_after_a_kill_every_unique_index_agrees_with_its_documents(own_mongo: OwnMongo) -> None:
    """A kill under concurrent writes may lose the last writes (`delay`), never half of one: a guarded write
    addressed through a unique index still finds every document a plain read shows (as on MongoDB)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(own_mongo.url)
    docs = client.crash.guarded
    await docs.create_index([("_id", 1), ("rev", 1)], unique=True)
    # Ledger-sized documents: the bigger a write, the longer a commit can catch it half done.
    filler = [{"pledge_id": f"plg_{n:04d}", "quantity": n, "status": "pledged"} for n in range(300)]
    await docs.insert_many([{"_id": n, "rev": 0, "pledges": filler} for n in range(20)])
    writing = True

    async def writer(number: int) -> None:
        rng = random.Random(number)
        while writing:
            doc_id = rng.randrange(20)
            with contextlib.suppress(Exception):  # the kill ends every connection
                current = await docs.find_one({"_id": doc_id})
                if current is not None:
                    await docs.update_one({"_id": doc_id, "rev": current["rev"]},
                                          {"$inc": {"rev": 1}, "$set": {"by": number, "pledges.0.quantity": number}})

    writers = [asyncio.create_task(writer(n)) for n in range(8)]
    try:
        await asyncio.sleep(2.5)  # past a few of `delay`'s once-a-second commits
        own_mongo.kill()  # while the writers are busy
    finally:
        writing = False
        await asyncio.gather(*writers, return_exceptions=True)
        await client.close()
    await asyncio.sleep(0.5)
    await asyncio.to_thread(own_mongo.up)
    client = AsyncMongoClient(own_mongo.url)
    try:
        shown = [doc async for doc in client.crash.guarded.find({})]
        assert len(shown) == 20 and any(doc["rev"] > 0 for doc in shown), "the load reached the file"
        out_of_step = []
        for doc in shown:
            found = await client.crash.guarded.update_one({"_id": doc["_id"], "rev": doc["rev"]},
                                                          {"$set": {"checked": True}})
            if found.matched_count != 1:
                out_of_step.append(doc)
        assert out_of_step == [], "documents the unique index does not find where a read shows them"
    finally:
        await client.close()
