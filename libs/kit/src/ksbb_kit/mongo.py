"""MongoDB wiring through PyMongo's async API (`AsyncMongoClient`)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase


def connect(url: str, **options: Any) -> AsyncMongoClient[dict[str, Any]]:
    """A client with the options every service uses.

    No `server_api`: it switches the handshake to `hello`, which the CI stand-in server lacks.
    """
    options.setdefault("tz_aware", True)
    options.setdefault("serverSelectionTimeoutMS", 5000)
    options.setdefault("uuidRepresentation", "standard")
    return AsyncMongoClient(url, **options)


async def ping(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether the database server answers."""
    try:
        await db.command("ping")
    except Exception:
        return False
    return True
