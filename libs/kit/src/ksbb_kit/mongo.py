"""MongoDB wiring through PyMongo's async API (`AsyncMongoClient`)."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

#: How long one reply from the database server may take before the operation fails (PyMongo waits forever
#: by default: a server that went silent, or a connection a network device dropped without a reset, would
#: hold a request, and the need lock it took, for good). Generous: no single command here takes seconds.
SOCKET_TIMEOUT_MS = 60_000


def connect(url: str, **options: Any) -> AsyncMongoClient[dict[str, Any]]:
    """A client with the options every service uses (the URL's own options win over these defaults).

    No `server_api`: it switches the handshake to `hello`, which the CI stand-in server lacks.
    """
    options.setdefault("tz_aware", True)
    options.setdefault("serverSelectionTimeoutMS", 5000)
    if "sockettimeoutms" not in url.lower():
        options.setdefault("socketTimeoutMS", SOCKET_TIMEOUT_MS)
    options.setdefault("uuidRepresentation", "standard")
    return AsyncMongoClient(url, **options)


async def ping(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether the database server answers."""
    try:
        await db.command("ping")
    except Exception:
        return False
    return True
