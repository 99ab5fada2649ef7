"""Snapshot files in MongoDB: chunks with deterministic ids, and metadata written once a snapshot is complete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bson import Binary
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase


class MongoSnapshotFiles:
    """Collections `snapshots` (metadata) and `snapshot_chunks` (file contents)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db

    async def ensure_indexes(self) -> None:
        """The index that reads a file's chunks in order."""
        await self._db.snapshot_chunks.create_index([("snapshot", 1), ("file", 1), ("n", 1)])

    async def exists(self, snapshot_id: str) -> bool:
        """Whether a complete snapshot with this id is stored."""
        return await self._db.snapshots.find_one({"_id": snapshot_id}) is not None

    async def write_chunk(self, snapshot_id: str, name: str, index: int, data: bytes) -> None:
        """Store one chunk of a file."""
        # Chunk ids are deterministic, so a crashed and repeated snapshot overwrites instead of duplicating.
        await self._db.snapshot_chunks.replace_one(
            {"_id": f"{snapshot_id}/{name}/{index:06d}"},
            {"snapshot": snapshot_id, "file": name, "n": index, "data": Binary(data)},
            upsert=True,
        )

    async def save(self, meta: dict[str, Any]) -> None:
        """Store a snapshot's metadata."""
        await self._db.snapshots.replace_one({"_id": meta["_id"]}, meta, upsert=True)

    async def list(self) -> list[dict[str, Any]]:
        """Every complete snapshot, newest first."""
        return [d async for d in self._db.snapshots.find({}).sort("_id", -1)]

    async def get(self, snapshot_id: str) -> dict[str, Any] | None:
        """One snapshot's metadata."""
        return await self._db.snapshots.find_one({"_id": snapshot_id})

    async def discard(self, snapshot_id: str) -> None:
        """Unlist a snapshot (metadata first: a listed snapshot is always complete), then delete its chunks."""
        await self._db.snapshots.delete_one({"_id": snapshot_id})
        await self._db.snapshot_chunks.delete_many({"snapshot": snapshot_id})

    async def read(self, snapshot_id: str, name: str) -> AsyncIterator[bytes]:
        """The bytes of one snapshot file, chunk by chunk."""
        chunks = self._db.snapshot_chunks.find({"snapshot": snapshot_id, "file": name}).sort("n", ASCENDING)
        async for chunk in chunks:
            yield bytes(chunk["data"])
