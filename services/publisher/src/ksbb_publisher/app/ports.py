"""What the publisher's use cases need from the outside: read-model stores, snapshot files, topic replay."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ksbb_publisher.domain.projection import OfferChange, VersionedPart

Doc = dict[str, Any]
#: Called with the feed entries a batch stored for the first time, in `seq` order, the moment they are stored
#: (the live stream's fast path: one rendering for the whole batch).
FeedListener = Callable[[list[Doc]], Awaitable[object]]


class ProjectionStore(Protocol):
    """Writes the read models; every write is idempotent (version guard, event id or feed entry id)."""

    async def ensure_indexes(self) -> None:
        """Indexes for the public queries (and numbers for feed entries stored before `seq` existed)."""
        ...

    async def apply_parts(self, parts: Sequence[VersionedPart]) -> int:
        """Merge versioned parts into their documents (see `domain.projection.batch_updates`), in one write
        per changed document; returns how many documents changed."""
        ...

    async def apply_offers(self, changes: Sequence[OfferChange]) -> int:
        """Apply offer changes in order, each event id once per offer; returns how many offers changed."""
        ...

    async def insert_feed_entries(self, entries: Sequence[Doc]) -> list[Doc]:
        """Store new feed entries with the next gap-free `seq`s, in order; returns those stored now
        (entries that exist already are skipped)."""
        ...

    async def reset(self) -> None:
        """Drop every read model for a rebuild; feed numbers continue above every `seq` handed out so far."""
        ...


class ReadModels(Protocol):
    """Reads the read models (raw documents); everything a caller shapes from them is public."""

    async def organisation_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Organisation id -> name."""
        ...

    async def recipient_summaries(self, ids: Iterable[str]) -> dict[str, Doc]:
        """Recipient id -> name, RW and beneficiaries, for published recipients only."""
        ...

    async def donor_names(self, ids: Iterable[str]) -> dict[str, str | None]:
        """Donor id -> display name if the donor opted in (None otherwise; absent when unknown)."""
        ...

    async def open_need_counts(self, recipient_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Recipient id -> number of open needs (of every recipient when `recipient_ids` is None)."""
        ...

    async def delivered_by_recipient(self, recipient_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Recipient id -> packages delivered according to the need ledgers."""
        ...

    async def recipient_docs(self, query: RecipientQuery, limit: int) -> list[Doc]:
        """Up to `limit` published recipients matching the query, ordered by id."""
        ...

    async def recipient_doc(self, recipient_id: str) -> Doc | None:
        """One published recipient."""
        ...

    def need_docs(self, query: NeedQuery, batch: int) -> AsyncGenerator[Doc, None]:
        """Needs (registry part present) matching the query, ordered by id, read `batch` at a time."""
        ...

    async def need_doc(self, need_id: str) -> Doc | None:
        """One need whose registry part is present."""
        ...

    async def organisation_docs(self) -> list[Doc]:
        """Every organisation, ordered by id."""
        ...

    async def feed_docs(self, *, before: str | None, recipient_id: str | None, limit: int) -> list[Doc]:
        """Up to `limit` feed entries, newest first (by cursor), older than `before`."""
        ...

    async def feed_after(self, seq: int, limit: int, *, upto: int | None = None) -> list[Doc]:
        """Feed entries with `seq` above `seq` (and at most `upto`), in insertion order."""
        ...

    async def latest_feed_seq(self) -> int:
        """The highest `seq` in the feed (0 when empty)."""
        ...

    async def feed_seq_at_cursor(self, cursor: str) -> int | None:
        """The `seq` of the entry with this cursor, if any."""
        ...

    async def first_feed_seq_after_cursor(self, cursor: str) -> int | None:
        """The lowest `seq` of the entries with a later cursor, if any."""
        ...

    async def counted_recipients(self, ids: Sequence[str] | None = None) -> list[Doc]:
        """Recipients counted in statistics (all, or those with these ids), ordered by id."""
        ...

    async def live_pledge_donors(self) -> list[tuple[str, str, str]]:
        """(recipient, donor, item) of every live pledge, each combination once."""
        ...

    async def item_totals(self) -> list[Doc]:
        """Per item (`_id`): number of needs, requested and delivered quantities."""
        ...

    async def last_deliveries(self, recipient_ids: Sequence[str]) -> dict[str, datetime]:
        """Recipient id -> time of its latest delivery (recipients without one are absent)."""
        ...

    def export_docs(self, dataset: str, batch: int) -> AsyncIterator[Doc]:
        """The source documents of an open-data table in table order."""
        ...

    async def revision(self) -> str:
        """A fingerprint that changes whenever any read model changes."""
        ...


@dataclass(frozen=True)
class RecipientQuery:
    """Filters of the public recipient list; `status` None means every published state."""

    kota: str | None = None
    kecamatan: str | None = None
    kelurahan: str | None = None
    kind: str | None = None
    status: str | None = None
    ids_in: Sequence[str] | None = None
    ids_not_in: Sequence[str] | None = None
    after: str | None = None


@dataclass(frozen=True)
class NeedQuery:
    """Filters of the public need list."""

    recipient_id: str | None = None
    status: str | None = None
    item: str | None = None
    kota: str | None = None
    kecamatan: str | None = None
    kelurahan: str | None = None
    after: str | None = None
    priority: str | None = None


class SnapshotFiles(Protocol):
    """Stores snapshot files in chunks and their metadata (written last, so listed means complete)."""

    async def exists(self, snapshot_id: str) -> bool:
        """Whether a complete snapshot with this id is stored."""
        ...

    async def write_chunk(self, snapshot_id: str, name: str, index: int, data: bytes) -> None:
        """Store (or overwrite) one chunk of a file."""
        ...

    async def save(self, meta: Doc) -> None:
        """Store a snapshot's metadata; from now on it is listed."""
        ...

    async def list(self) -> list[Doc]:
        """Every complete snapshot, newest first."""
        ...

    async def get(self, snapshot_id: str) -> Doc | None:
        """One snapshot's metadata."""
        ...

    def read(self, snapshot_id: str, name: str) -> AsyncIterator[bytes]:
        """The bytes of one file, chunk by chunk."""
        ...

    async def discard(self, snapshot_id: str) -> None:
        """Unlist a snapshot, then delete its chunks (before it is taken again)."""
        ...


@dataclass(frozen=True)
class ReplayedRecord:
    """One record read back from a topic during a rebuild."""

    topic: str
    key: bytes | None
    value: bytes | None


class TopicReplay(Protocol):
    """Reads topics from their beginning up to the end offsets seen when reading starts."""

    async def size(self, topics: Sequence[str]) -> int:
        """How many records the topics hold now (what a replay starting now reads, about)."""
        ...

    def batches(self, topics: Sequence[str]) -> AsyncIterator[list[ReplayedRecord]]:
        """Records in batches; within a partition in offset order."""
        ...


class Progress(Protocol):
    """Shows how far a long job is (a bar with rate and time left on a terminal, periodic lines otherwise)."""

    def start(self, total: int | None) -> None:
        """The job starts; `total` units of work (None when unknown)."""
        ...

    def advance(self, done: int) -> None:
        """`done` more units are finished."""
        ...
