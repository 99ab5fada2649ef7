"""Jobs isolate items: a sweep works item by item, and an item that raises is recorded and skipped.

One bad record (a date out of range, a document an old version wrote) must not stop a job for everyone.
`for_each_item` runs the work for each item; an item that raises is logged, counted
(`ksbb_job_item_failures_total{job}`) and marked *stuck* in the service's `stuck_job_items` collection —
with the job, the item's id, the error and how often it failed — and the job goes on with the next item.
An item that succeeds again loses its marker. Operators list the markers with `ksbb jobs stuck`.

With several replicas, `JobLease` makes one of them do each run: a document per job in `job_leases` names its
holder until an expiry the holder keeps renewing, and records when the job last started, so a replica taking
over (the holder stopped or died) keeps the schedule instead of running again at once.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from prometheus_client import Counter
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ksbb_kit.clock import Clock, SystemClock

log = logging.getLogger(__name__)
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
#: Collection (in each service's database) of the items jobs could not process.
STUCK_COLLECTION = "stuck_job_items"
#: Collection (in each service's database) of the background jobs' leases, one document per job name.
LEASE_COLLECTION = "job_leases"
JOB_ITEM_FAILURES = Counter("ksbb_job_item_failures_total", "Job items that raised and were skipped", ["job"])
JOB_ITEMS_STUCK = Counter("ksbb_job_items_stuck_total", "Job items newly marked stuck", ["job"])


class StuckItems:
    """The markers of job items that raised: one document per (job, item), kept until the item succeeds."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], clock: Clock | None = None) -> None:
        self._collection = db[STUCK_COLLECTION]
        self._clock = clock or SystemClock()

    @staticmethod
    def _id(job: str, item_id: str) -> str:
        return f"{job}/{item_id}"

    async def mark(self, job: str, item_id: str, error: str) -> None:
        """Record (or count again) an item that raised."""
        now = self._clock.now()
        result = await self._collection.update_one(
            {"_id": self._id(job, item_id)},
            {"$set": {"job": job, "item_id": item_id, "error": error[:2000], "last_failed_at": now},
             "$setOnInsert": {"first_failed_at": now}, "$inc": {"failures": 1}},
            upsert=True,
        )
        if result.upserted_id is not None:
            JOB_ITEMS_STUCK.labels(job=job).inc()

    async def clear(self, job: str, item_id: str) -> None:
        """Forget an item's marker (it succeeded)."""
        await self._collection.delete_one({"_id": self._id(job, item_id)})

    async def item_ids(self, job: str) -> set[str]:
        """The ids of this job's stuck items."""
        return {doc["item_id"] async for doc in self._collection.find({"job": job}, {"item_id": 1})}

    async def listing(self, job: str | None = None) -> list[dict[str, Any]]:
        """The markers (of one job, or all), oldest failure first."""
        query = {"job": job} if job else {}
        found = [doc async for doc in self._collection.find(query).sort("first_failed_at", 1)]
        return [{k: v for k, v in doc.items() if k != "_id"} for doc in found]


class JobLease:
    """One replica's claim on a background job: held until released or until it is not renewed in time.

    Lease time is wall-clock time (several processes compare it), never the service's possibly manual clock.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]], job: str, holder: str, seconds: float) -> None:
        self._collection = db[LEASE_COLLECTION]
        self.job = job
        self.holder = holder
        self.seconds = seconds

    async def hold(self) -> bool:
        """Take the lease if it is free or expired, or renew it when this holder has it; whether it is held."""
        now = datetime.now(UTC)
        try:
            await self._collection.update_one(
                {"_id": self.job, "$or": [{"holder": self.holder}, {"expires_at": {"$lt": now}}]},
                {"$set": {"holder": self.holder, "expires_at": now + timedelta(seconds=self.seconds)}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the document exists and another holder's lease is still running
        return True

    async def due(self, interval_seconds: float) -> bool:
        """Whether the job's last start (by any holder) is at least an interval ago; marks a new start if so."""
        now = datetime.now(UTC)
        previous_before = now - timedelta(seconds=interval_seconds)
        started = await self._collection.find_one_and_update(
            {"_id": self.job, "holder": self.holder,
             "$or": [{"last_started_at": None}, {"last_started_at": {"$lte": previous_before}}]},
            {"$set": {"last_started_at": now}},
        )
        return started is not None

    async def release(self) -> None:
        """Give the lease up (at stop) so another replica takes the job over at its next look."""
        await self._collection.update_one(
            {"_id": self.job, "holder": self.holder}, {"$set": {"expires_at": datetime.fromtimestamp(0, UTC)}},
        )


@dataclass
class JobRun(Generic[ResultT]):
    """What one pass of a job did: the results of the items that worked, the ids of those that raised."""

    results: list[ResultT] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        """How many items worked."""
        return len(self.results)


async def for_each_item(
    items: Iterable[ItemT] | AsyncIterable[ItemT],
    work: Callable[[ItemT], Awaitable[ResultT]],
    *,
    job: str,
    item_id: Callable[[ItemT], str],
    stuck: StuckItems | None = None,
    logger: logging.Logger | None = None,
) -> JobRun[ResultT]:
    """Run `work` for each item; an item that raises is logged, counted, marked stuck and skipped.

    Cancellation still stops the job (a shutdown); anything else an item raises stays with that item.
    """
    logger = logger or log
    run: JobRun[ResultT] = JobRun()
    known_stuck = await stuck.item_ids(job) if stuck is not None else set()
    async for item in _each(items):
        key = _safe_id(item_id, item)
        try:
            run.results.append(await work(item))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            run.failed.append(key)
            JOB_ITEM_FAILURES.labels(job=job).inc()
            error = "".join(traceback.format_exception_only(exc)).strip()
            logger.error("job %s: item %s failed and is skipped (%s)", job, key, error,
                         exc_info=key not in known_stuck)  # the traceback once, not on every pass
            if stuck is not None:
                await stuck.mark(job, key, error)
            continue
        if key in known_stuck and stuck is not None:
            await stuck.clear(job, key)
            logger.info("job %s: item %s works again", job, key)
    return run


def map_isolated(
    items: Iterable[ItemT],
    work: Callable[[ItemT], ResultT],
    *,
    job: str,
    item_id: Callable[[ItemT], str],
    logger: logging.Logger | None = None,
) -> list[ResultT]:
    """`[work(item) for item in items]`, leaving out (logging and counting) the items it raises on."""
    results: list[ResultT] = []
    for item in items:
        try:
            results.append(work(item))
        except Exception as exc:
            _skipped(job, _safe_id(item_id, item), exc, logger or log)
    return results


def _skipped(job: str, key: str, exc: Exception, logger: logging.Logger) -> None:
    JOB_ITEM_FAILURES.labels(job=job).inc()
    logger.error("job %s: item %s failed and is skipped (%s)", job, key,
                 "".join(traceback.format_exception_only(exc)).strip())


async def each_isolated(
    items: Iterable[ItemT] | AsyncIterable[ItemT],
    work: Callable[[ItemT], ResultT],
    *,
    job: str,
    item_id: Callable[[ItemT], str],
    logger: logging.Logger | None = None,
) -> AsyncIterator[ResultT]:
    """Stream `work(item)` for each item, skipping (logging and counting) the items it raises on.

    For streamed outputs (an export, a feed) where one bad record must not end the stream for everyone.
    """
    logger = logger or log
    async for item in _each(items):
        try:
            result = work(item)
        except Exception as exc:
            _skipped(job, _safe_id(item_id, item), exc, logger)
            continue
        yield result


async def _each(items: Iterable[ItemT] | AsyncIterable[ItemT]) -> Any:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def _safe_id(item_id: Callable[[ItemT], str], item: ItemT) -> str:
    try:
        return str(item_id(item))
    except Exception:
        return repr(item)[:200]

