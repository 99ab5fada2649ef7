"""Daily open-data snapshots: every table in every format, stored in chunks with a SHA-256 checksum."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from typing import Any

from ksbb_publisher.app.exports import OpenData
from ksbb_publisher.app.ports import Doc, SnapshotFiles
from ksbb_publisher.domain.errors import NoSnapshotFile
from ksbb_publisher.domain.opendata import DATASETS, FORMATS


class Snapshots:
    """Takes and serves snapshots; a snapshot is listed only once all its files are complete."""

    def __init__(self, files: SnapshotFiles, open_data: OpenData, chunk_bytes: int) -> None:
        self._files = files
        self._open_data = open_data
        self._chunk = chunk_bytes

    async def take_when_caught_up(
        self, now: datetime, caught_up: Callable[[], Awaitable[bool]],
    ) -> dict[str, Any] | None:
        """Take today's snapshot unless it exists, but only once the read models have caught up with the
        events published so far (`caught_up`): a snapshot taken at start-up, mid-replay, would be empty."""
        if await self._files.exists(now.date().isoformat()) or not await caught_up():
            return None
        return await self.take(now)

    async def retake(self, day: date, now: datetime) -> dict[str, Any]:
        """Take the snapshot named `day` again from the read models as they are now (an operator's command)."""
        await self._files.discard(day.isoformat())
        taken = await self.take(now, day=day)
        assert taken is not None  # just discarded
        return taken

    async def take(self, now: datetime, *, day: date | None = None) -> dict[str, Any] | None:
        """Take today's (or `day`'s) snapshot unless it exists; returns its metadata when taken now."""
        snapshot_id = (day or now.date()).isoformat()
        if await self._files.exists(snapshot_id):
            return None
        files = []
        for dataset in DATASETS:
            for fmt in FORMATS:
                files.append(await self._write_file(snapshot_id, dataset, fmt))
        meta = {"_id": snapshot_id, "taken_at": now, "files": files}
        await self._files.save(meta)
        return meta

    async def _write_file(self, snapshot_id: str, dataset: str, fmt: str) -> dict[str, Any]:
        name = f"{dataset}.{fmt}"
        digest, size, chunks, buffer = hashlib.sha256(), 0, 0, bytearray()
        async for piece in self._open_data.stream(dataset, fmt):
            data = piece.encode()
            digest.update(data)
            size += len(data)
            buffer.extend(data)
            while len(buffer) >= self._chunk:
                await self._files.write_chunk(snapshot_id, name, chunks, bytes(buffer[: self._chunk]))
                del buffer[: self._chunk]
                chunks += 1
        if buffer or chunks == 0:
            await self._files.write_chunk(snapshot_id, name, chunks, bytes(buffer))
            chunks += 1
        return {
            "name": name,
            "dataset": dataset,
            "format": fmt,
            "bytes": size,
            "sha256": digest.hexdigest(),
            "chunks": chunks,
        }

    async def list(self) -> list[Doc]:
        """Every complete snapshot, newest first."""
        return await self._files.list()

    async def file(self, snapshot_id: str, file_name: str) -> dict[str, Any]:
        """The metadata of one file of a complete snapshot."""
        meta = await self._files.get(snapshot_id)
        found = next((f for f in (meta or {}).get("files", []) if f["name"] == file_name), None)
        if meta is None or found is None:
            raise NoSnapshotFile(snapshot_id, file_name)
        return dict(found)

    def read(self, snapshot_id: str, file_name: str) -> AsyncIterator[bytes]:
        """The bytes of one snapshot file, chunk by chunk."""
        return self._files.read(snapshot_id, file_name)
