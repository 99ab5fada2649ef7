"""HTTP helpers shared by the services: request context and access log, ETags, cursors, idempotency keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ksbb_contracts.limits import CURSOR_MAX
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ksbb_kit.clock import Clock
from ksbb_kit.errors import ApiError
from ksbb_kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from ksbb_kit.tracing import REQUEST_ID_HEADER, accept_request_id, child_of, set_request_id, set_traceparent

#: One line per handled request (method, path, route template, status, duration, client address).
ACCESS_LOG = logging.getLogger("ksbb.access")


def enter_request_context(headers: Mapping[str, str]) -> str:
    """Adopt the caller's `X-Request-ID` (or make one) and continue its `traceparent`; returns the request id.

    Both usually come from the gateway; a malformed value is replaced, never trusted into logs.
    """
    request_id = accept_request_id(headers.get("x-request-id"))
    set_request_id(request_id)
    set_traceparent(child_of(headers.get("traceparent")))
    return request_id


def route_path(scope: Mapping[str, Any]) -> str:
    """The request path as the service routes it: without the `root_path` uvicorn puts in front."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", "") or "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


def route_template(scope: Mapping[str, Any]) -> str:
    """The matched operation's full path template (`/v1/needs/{need_id}`), or "unmatched".

    FastAPI records the route of the router it was declared on (`/needs/{need_id}` under an included
    `/v1` router); the include prefixes are the leading segments of the concrete path the template does
    not cover.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return "unmatched"
    if ":path}" in template:
        return template
    segments = route_path(scope).split("/")
    depth = template.count("/")
    prefix = "/".join(segments[: max(len(segments) - depth, 0)])
    return prefix + template


def log_access(
    service: str, method: str, path: str, route: str, status: int, seconds: float, client: str | None
) -> None:
    """Write the access line of one request; the request id and trace id come from the request context.

    `client` is the address uvicorn reports: the real client only when the peer is a trusted proxy.
    """
    ACCESS_LOG.info(
        "%s %s %d %.1fms", method, path, status, seconds * 1000,
        extra={"service": service, "http": {
            "method": method, "path": path, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 3), "client": client,
        }},
    )


class ObserveRequests:
    """Request id and trace context in, `X-Request-ID` out; one access line and the HTTP metrics per request.

    A plain ASGI middleware: starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`) runs every request
    through an extra task and a memory stream, a measurable share of a small request's CPU.
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call; anything but HTTP passes through untouched."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = enter_request_context(headers)
        started = time.perf_counter()
        status = 500  # what the server answers when the app fails before starting a response
        answered: float | None = None  # until the response starts: a stream (SSE) is timed to its start

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], time.perf_counter()
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            method, route = scope["method"], route_template(scope)
            elapsed = (answered or time.perf_counter()) - started
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            client = scope.get("client")
            log_access(self.service, method, route_path(scope), route, status, elapsed, client[0] if client else None)


def app_state_part(holder: str, part: str) -> Callable[[Request], Any]:
    """A route dependency returning one part of what the composition root put on `app.state.<holder>`.

    Services declare `Annotated[TheService, Depends(app_state_part("use_cases", "pledges"))]` instead of one
    accessor function per use case.
    """

    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop on every request.
    async def dependency(request: Request) -> Any:
        return getattr(getattr(request.app.state, holder), part)

    dependency.__name__ = f"{holder}_{part}"
    return dependency


def etag_for(resource_id: str, version: int) -> str:
    """A strong ETag from a resource's id and version."""
    return f'"{hashlib.sha1(f"{resource_id}:{version}".encode()).hexdigest()[:20]}"'


def check_if_match(if_match: str | None, resource_id: str, version: int) -> None:
    """412 when the client's If-Match names another version; no header means unconditional."""
    if if_match is None:
        return
    current = etag_for(resource_id, version)
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in candidates and current not in candidates:
        raise ApiError(412, "precondition_failed", "the resource changed since you read it; fetch it again",
                       field="If-Match", details={"current_etag": current})


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor from the sort values of the last item."""
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The sort values inside a cursor; 422 if it is not one of ours."""
    if len(cursor) > CURSOR_MAX:  # not ours: cursors hold the sort values of one item
        raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor") from exc
    if not isinstance(values, list):
        raise ApiError(422, "invalid_cursor", "cursor is not valid", field="cursor")
    return values


def fingerprint(payload: Any) -> str:
    """A stable hash of a request body, to spot an idempotency key reused for another request."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


#: How long a claimed Idempotency-Key may stay unanswered before another request takes the claim over
#: (its holder crashed); a waiting request gives up waiting after this long as well.
CLAIM_TIMEOUT = timedelta(seconds=30)
#: How often a request waiting for another one with the same key looks for its result.
CLAIM_POLL_SECONDS = 0.05
#: Keys are forgotten by the minute: each minute's keys are listed in a few small documents (one per
#: shard of the key hash), so the retention sweep looks up exactly the minutes that have expired.
EXPIRY_MINUTE_SHARDS = 8

#: The work run once per key: returns the response status and its JSON body.
Work = Callable[[], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class StoredResponse:
    """The response of a request run under an Idempotency-Key; `replayed` when it was the first request's."""

    status: int
    body: Any
    replayed: bool = False


@dataclass(frozen=True)
class Claim:
    """This request holds the key: it does the work, then `complete`s (or `release`s) the claim."""

    key_id: str
    token: str


def _key_reused() -> ApiError:
    return ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different request",
                    field="Idempotency-Key")


class IdempotencyStore:
    """Runs a request once per (caller, operation, Idempotency-Key), also under concurrency and across replicas.

    The first request claims the key atomically (a unique insert carrying the body's hash) before it does
    any work. A concurrent request with another body gets 422; one with the same body waits for the first
    one's response and replays it. A claim whose holder crashed is taken over after `claim_timeout`.
    Failed work releases its claim, so a retry runs again. Keys are swept after a retention period.
    Creates also use ids derived from the key, so work that ran twice (a taken-over claim whose holder
    was only slow) still creates once.
    """

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        clock: Clock,
        retention: timedelta,
        *,
        claim_timeout: timedelta = CLAIM_TIMEOUT,
        poll_seconds: float = CLAIM_POLL_SECONDS,
    ) -> None:
        self._collection = db["idempotency_keys"]
        #: `{_id: "<minute>/<shard>", keys: [...]}` per minute keys were stored in; `{_id: "swept", upto}`.
        self._expiry = db["idempotency_expiry"]
        self._clock = clock
        self._retention = retention
        self._claim_timeout = claim_timeout
        self._poll_seconds = poll_seconds

    async def create_indexes(self) -> None:
        """The index the claim's writes are answered by: `_id` with the holder's token, nothing else."""
        # A write naming fields no index holds exactly is a scan of every key on the stand-in (one that
        # grows with history); `{_id, token}` is unique because `_id` is.
        await self._collection.create_index([("_id", ASCENDING), ("token", ASCENDING)], unique=True)

    @staticmethod
    def _id(caller: str, operation: str, key: str) -> str:
        return hashlib.sha256(f"{caller}\x1f{operation}\x1f{key}".encode()).hexdigest()

    async def once(self, caller: str, operation: str, key: str, request_hash: str, work: Work) -> StoredResponse:
        """The response of `work`, run once per key: the first request runs it, later ones replay its response."""
        claimed = await self.claim(caller, operation, key, request_hash)
        if isinstance(claimed, StoredResponse):
            return claimed
        try:
            status, body = await work()
        except BaseException:
            await self.release(claimed)
            raise
        await self.complete(claimed, status, body)
        return StoredResponse(status, body)

    async def claim(self, caller: str, operation: str, key: str, request_hash: str) -> Claim | StoredResponse:
        """Hold the key for this request, or the first request's response to replay.

        Raises 422 when the key was used for another body; waits while another request with the same
        body holds it, and takes the claim over once that request is older than the claim timeout.
        """
        key_id = self._id(caller, operation, key)
        token = uuid.uuid4().hex
        await self._note_expiry(key_id)
        loop = asyncio.get_running_loop()
        give_up_waiting = loop.time() + self._claim_timeout.total_seconds()
        while True:
            now = self._clock.now()
            try:
                await self._collection.insert_one({
                    "_id": key_id, "request_hash": request_hash, "state": "claimed", "token": token,
                    "claimed_at": now, "created_at": now,
                })
                return Claim(key_id, token)
            except DuplicateKeyError:
                pass
            stored = await self._collection.find_one({"_id": key_id})
            if stored is None:
                continue  # released or swept in between: claim it again
            if stored["request_hash"] != request_hash:
                raise _key_reused()
            if stored.get("state", "done") == "done":
                return StoredResponse(stored["status"], stored["body"], replayed=True)
            if self._expired(stored["claimed_at"], now) or loop.time() >= give_up_waiting:
                # Its holder crashed (or hangs): take the claim over, unless another waiter just did.
                # Only a claimed key holds a token (completing it removes the token), so `_id` and token say
                # it is still that holder's claim.
                taken = await self._collection.update_one(
                    {"_id": key_id, "token": stored["token"]},
                    {"$set": {"token": token, "claimed_at": now}},
                )
                if taken.matched_count == 1:
                    return Claim(key_id, token)
                continue
            await asyncio.sleep(self._poll_seconds)

    async def complete(self, claim: Claim, status: int, body: Any) -> None:
        """Store the response of the claimed request (unless its claim was taken over meanwhile)."""
        await self._collection.update_one(
            {"_id": claim.key_id, "token": claim.token},
            {"$set": {"state": "done", "status": status, "body": body}, "$unset": {"token": ""}},
        )

    async def release(self, claim: Claim) -> None:
        """Give the key up after failed work, so that a retry runs the request again."""
        await self._collection.delete_one({"_id": claim.key_id, "token": claim.token})

    def _expired(self, claimed_at: datetime, now: datetime) -> bool:
        if claimed_at.tzinfo is None:  # MongoDB hands datetimes back naive (UTC)
            claimed_at = claimed_at.replace(tzinfo=UTC)
        return now - claimed_at >= self._claim_timeout

    async def recall(self, caller: str, operation: str, key: str, request_hash: str) -> dict[str, Any] | None:
        """The stored response for a retried request, or None (also while the first one still runs);
        422 if the key was used for another body."""
        stored = await self._collection.find_one({"_id": self._id(caller, operation, key)})
        if stored is None:
            return None
        if stored["request_hash"] != request_hash:
            raise _key_reused()
        if stored.get("state", "done") != "done":
            return None
        return {"status": stored["status"], "body": stored["body"]}

    async def remember(
        self, caller: str, operation: str, key: str, request_hash: str, status: int, body: Any
    ) -> None:
        """Store the response of the first request with this key (without a claim; `once` claims first)."""
        await self._note_expiry(self._id(caller, operation, key))
        try:
            await self._collection.insert_one({
                "_id": self._id(caller, operation, key), "request_hash": request_hash, "state": "done",
                "status": status, "body": body, "created_at": self._clock.now(),
            })
        except DuplicateKeyError:
            pass

    async def _note_expiry(self, key_id: str) -> None:
        # Before the key is stored: a note for a key never stored is harmless, a stored key without one
        # would never be forgotten.
        minute = int(self._clock.now().timestamp()) // 60
        shard = int(key_id[:2], 16) % EXPIRY_MINUTE_SHARDS
        await self._expiry.update_one({"_id": f"{minute}/{shard}"}, {"$push": {"keys": key_id}}, upsert=True)

    async def sweep(self) -> int:
        """Forget keys older than the retention period (no TTL indexes on the CI server).

        Only the minutes that have expired since the last sweep are looked up (by id), so an idle sweep
        reads one small document; the very first sweep of a database forgets older keys by their time.
        """
        cutoff: datetime = self._clock.now() - self._retention
        last = int(cutoff.timestamp()) // 60 - 1  # the last minute that ended before the cutoff
        state = await self._expiry.find_one({"_id": "swept"})
        if state is None:
            # Keys stored before expiry notes existed: found by time, once per database.
            removed = (await self._collection.delete_many({"created_at": {"$lt": cutoff}})).deleted_count
            await self._expiry.update_one({"_id": "swept"}, {"$max": {"upto": last}}, upsert=True)
            return removed
        removed = 0
        for first in range(int(state["upto"]) + 1, last + 1, 60):
            minutes = range(first, min(first + 60, last + 1))
            notes = [f"{m}/{s}" for m in minutes for s in range(EXPIRY_MINUTE_SHARDS)]
            found = [n async for n in self._expiry.find({"_id": {"$in": notes}})]
            keys = list({k for n in found for k in n.get("keys", [])})
            if keys:
                # A key released and stored again later is newer than its old note: keep it.
                stored = self._collection.find({"_id": {"$in": keys}}, {"created_at": 1})
                expired = [d["_id"] async for d in stored if _aware(d["created_at"]) < cutoff]
                if expired:
                    removed += (await self._collection.delete_many({"_id": {"$in": expired}})).deleted_count
            if found:
                await self._expiry.delete_many({"_id": {"$in": [n["_id"] for n in found]}})
            await self._expiry.update_one({"_id": "swept"}, {"$max": {"upto": minutes[-1]}})
        return removed


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
