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

    The resource id is derived from the key, so a retry after a crash before `remember` hits the same id.
    """
    request_hash = fingerprint(body.model_dump(mode="json"))
    if key:
        stored = await store.recall(caller, operation, key, request_hash)
        if stored is not None:
            headers = {"Idempotent-Replayed": "true"}
            if isinstance(stored["body"], dict) and "version" in stored["body"]:
                resource_id = next(
                    (v for k, v in stored["body"].items() if k.endswith("_id") and str(v).startswith(prefix)),
                    None,
                )
                if resource_id:
                    headers["ETag"] = etag_for(resource_id, stored["body"]["version"])
            return JSONResponse(stored["body"], status_code=stored["status"], headers=headers)
    resource_id = derived_id(prefix, caller, operation, key) if key else new_id(prefix)
    model, rid, version = await create(resource_id)
    payload: Any = model.model_dump(mode="json")
    if key:
        await store.remember(caller, operation, key, request_hash, 201, payload)
    return JSONResponse(payload, status_code=201, headers={"ETag": etag_for(rid, version)} if version else {})
