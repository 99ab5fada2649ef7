"""Response helpers shared by the routers: ETags, and creates that run once per Idempotency-Key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse
from ksbb_kit.http import IdempotencyStore, etag_for, fingerprint
from ksbb_kit.ids import derived_id, new_id
from pydantic import BaseModel

#: Creates a resource under the given id; returns its response model, its id and version (0: no ETag).
Create = Callable[[str], Awaitable[tuple[BaseModel, str, int]]]


def with_etag(model: BaseModel, resource_id: str, version: int, status: int = 200) -> JSONResponse:
    """A JSON response carrying the resource's ETag."""
    return JSONResponse(
        model.model_dump(mode="json"), status_code=status, headers={"ETag": etag_for(resource_id, version)}
    )


async def idempotent_create(
    store: IdempotencyStore,
    caller: str,
    operation: str,
    key: str | None,
    body: BaseModel,
    prefix: str,
    create: Create,
) -> JSONResponse:
    """Run a create once per (caller, operation, Idempotency-Key): retries get the first response.

    The key is claimed before the create runs, so a concurrent request with the same key waits for this
    one's response (or gets 422 for another body). The resource id is derived from the key as well, so
    a create repeated after a crash before its response was stored hits the same id.
    """
    if not key:
        model, rid, version = await create(new_id(prefix))
        return JSONResponse(
            model.model_dump(mode="json"), status_code=201, headers={"ETag": etag_for(rid, version)} if version else {}
        )
    created_id = derived_id(prefix, caller, operation, key)

    async def work() -> tuple[int, Any]:
        nonlocal created_id
        model, created_id, _ = await create(created_id)
        return 201, model.model_dump(mode="json")

    outcome = await store.once(caller, operation, key, fingerprint(body.model_dump(mode="json")), work)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    stored_version = outcome.body.get("version") if isinstance(outcome.body, dict) else None
    if stored_version:
        headers["ETag"] = etag_for(created_id, int(stored_version))
    return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)
