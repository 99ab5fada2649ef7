"""Daily open-data snapshots: every table in every format, stored in chunks with a SHA-256 checksum."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from bson import Binary
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from ksbb_publisher.adapters.queries import ReadQueries
from ksbb_publisher.domain.opendata import DATASETS, FORMATS, csv_lines, header_rows, json_row, row_values


async def export_stream(queries: ReadQueries, dataset: str, fmt: str) -> AsyncIterator[str]:
    """The text of one open-data file, piece by piece (CSV with HXL row, or HXL-JSON arrays)."""
    headers = header_rows(dataset)
    if fmt == "csv":
        yield csv_lines(headers)
        rows: list[list[Any]] = []
        async for record in queries.export_records(dataset):
            rows.append(row_values(dataset, record))
            if len(rows) >= 200:
                yield csv_lines(rows)
                rows = []
        if rows:
            yield csv_lines(rows)
        return
    yield "[\n" + json_row(headers[0]) + ",\n" + json_row(headers[1])
    async for record in queries.export_records(dataset):
        yield ",\n" + json_row(row_values(dataset, record))
    yield "\n]\n"


class SnapshotStore:
    """Writes and reads snapshots; a snapshot is listed only once all its files are complete."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], queries: ReadQueries, chunk_bytes: int) -> None:
        self._db = db
        self._queries = queries
        self._chunk = chunk_bytes

    async def take(self, now: datetime) -> dict[str, Any] | None:
        """Take today's snapshot unless it exists; returns its metadata when taken now."""
        snapshot_id = now.date().isoformat()
        if await self._db.snapshots.find_one({"_id": snapshot_id}) is not None:
            return None
        files = []
        for dataset in DATASETS:
            for fmt in FORMATS:
                name = f"{dataset}.{fmt}"
                digest, size, chunks, buffer = hashlib.sha256(), 0, 0, bytearray()
                async for piece in export_stream(self._queries, dataset, fmt):
                    data = piece.encode()
                    digest.update(data)
                    size += len(data)
                    buffer.extend(data)
                    while len(buffer) >= self._chunk:
                        await self._write_chunk(snapshot_id, name, chunks, bytes(buffer[: self._chunk]))
                        del buffer[: self._chunk]
                        chunks += 1
                if buffer or chunks == 0:
                    await self._write_chunk(snapshot_id, name, chunks, bytes(buffer))
                    chunks += 1
                files.append(
                    {
                        "name": name,
                        "dataset": dataset,
                        "format": fmt,
                        "bytes": size,
                        "sha256": digest.hexdigest(),
                        "chunks": chunks,
                    }
                )
        meta = {"_id": snapshot_id, "taken_at": now, "files": files}
        await self._db.snapshots.replace_one({"_id": snapshot_id}, meta, upsert=True)
        return meta

    async def _write_chunk(self, snapshot_id: str, name: str, index: int, data: bytes) -> None:
        # Chunk ids are deterministic, so a crashed and repeated snapshot overwrites instead of duplicating.
        await self._db.snapshot_chunks.replace_one(
            {"_id": f"{snapshot_id}/{name}/{index:06d}"},
            {"snapshot": snapshot_id, "file": name, "n": index, "data": Binary(data)},
            upsert=True,
        )

    async def list(self) -> list[dict[str, Any]]:
        """Every complete snapshot, newest first."""
        return [d async for d in self._db.snapshots.find({}).sort("_id", -1)]

    async def get(self, snapshot_id: str) -> dict[str, Any] | None:
        """One snapshot's metadata."""
        return await self._db.snapshots.find_one({"_id": snapshot_id})

    async def read(self, snapshot_id: str, name: str) -> AsyncIterator[bytes]:
        """The bytes of one snapshot file, chunk by chunk."""
        chunks = self._db.snapshot_chunks.find({"snapshot": snapshot_id, "file": name}).sort("n", ASCENDING)
        async for chunk in chunks:
            yield bytes(chunk["data"])
