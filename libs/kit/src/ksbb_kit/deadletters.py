"""Dead letters that always fit: the record's copy for the dead-letter topic, and its full payload when too large.

A dead letter carries the original key, value and headers plus `ksbb-dlq-*` headers saying why. A record
near the broker's size limit no longer fits once those headers are added; then its full key, value and
headers are stored in the service's own database (`dead_letter_payloads`) and the dead letter keeps the
headers, a truncated value and a reference (`ksbb-dlq-payload-ref`) an operator resolves with
`ksbb dlq show` — so a poison record can always be set aside and its partition moves on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from bson import Binary
from pymongo.asynchronous.database import AsyncDatabase

#: Collection (in each service's database) holding the full payloads of dead letters too large to copy.
PAYLOAD_COLLECTION = "dead_letter_payloads"
#: Header prefix of every dead-letter annotation; replay strips these.
DLQ_HEADER_PREFIX = "ksbb-dlq-"
REASON = "ksbb-dlq-reason"
ERROR = "ksbb-dlq-error"
ORIGINAL_TOPIC = "ksbb-dlq-topic"
PAYLOAD_REF = "ksbb-dlq-payload-ref"
PAYLOAD_BYTES = "ksbb-dlq-payload-bytes"
VALUE_TRUNCATED = "ksbb-dlq-value-truncated"
HEADERS_TRUNCATED = "ksbb-dlq-headers-truncated"
KEY_BASE64 = "ksbb-dlq-key-base64"
#: How much of a too-large value the dead letter keeps, so `ksbb dlq list` still shows what it was.
KEPT_VALUE_BYTES = 16 * 1024
#: Header values longer than this are cut when the headers alone would not fit.
KEPT_HEADER_BYTES = 1024

HeaderValue = str | bytes


@dataclass(frozen=True)
class DeadLetter:
    """One record for a dead-letter topic: key and value as received, headers with the annotations."""

    topic: str
    key: str | bytes | None
    value: bytes | None
    headers: dict[str, HeaderValue]

    def size(self) -> int:
        """Upper bound of the record's size as the producer and broker count it."""
        return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(
            _as_bytes(self.key), self.value, [(k, _as_bytes(v)) for k, v in self.headers.items()],
        ))


def _as_bytes(value: HeaderValue | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def payload_reference(database: str, payload_id: str) -> str:
    """Where `ksbb dlq show` finds a stored payload: `mongodb:<database>/dead_letter_payloads/<id>`."""
    return f"mongodb:{database}/{PAYLOAD_COLLECTION}/{payload_id}"


def parse_payload_reference(reference: str) -> tuple[str, str]:
    """The database and document id of a payload reference; ValueError when it is not one."""
    scheme, _, rest = reference.partition(":")
    database, collection, payload_id = [*rest.split("/", 2), "", ""][:3]
    if scheme != "mongodb" or collection != PAYLOAD_COLLECTION or not database or not payload_id:
        raise ValueError(f"not a dead-letter payload reference: {reference!r}")
    return database, payload_id


def shrunk(letter: DeadLetter, reference: str, max_bytes: int) -> DeadLetter:
    """The dead letter cut down to fit `max_bytes`: a truncated value, long headers cut, and the reference."""
    value = letter.value
    headers = dict(letter.headers)
    headers[PAYLOAD_REF] = reference
    headers[PAYLOAD_BYTES] = str(len(value or b""))
    if value is not None and len(value) > KEPT_VALUE_BYTES:
        value = value[:KEPT_VALUE_BYTES]
        headers[VALUE_TRUNCATED] = "true"
    candidate = DeadLetter(letter.topic, letter.key, value, headers)
    if candidate.size() <= max_bytes:
        return candidate
    cut = sorted(k for k, v in headers.items() if not k.startswith(DLQ_HEADER_PREFIX) and len(v) > KEPT_HEADER_BYTES)
    for name in cut:
        headers[name] = headers[name][:KEPT_HEADER_BYTES]
    headers[HEADERS_TRUNCATED] = ",".join(cut)[:KEPT_HEADER_BYTES]
    key = letter.key
    if isinstance(key, bytes | str) and len(key) > KEPT_HEADER_BYTES:
        key = key[:KEPT_HEADER_BYTES]
    return DeadLetter(letter.topic, key, value, headers)


class DeadLetterPayloads:
    """The service database's store of dead-letter payloads too large for the dead-letter topic."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db

    @property
    def database(self) -> str:
        """The database name references point into."""
        return self._db.name

    async def keep(
        self, payload_id: str, letter: DeadLetter, *, original: Mapping[str, HeaderValue], stored_at: datetime,
    ) -> str:
        """Store the full record once (a redelivery overwrites the same document); returns its reference."""
        await self._db[PAYLOAD_COLLECTION].replace_one({"_id": payload_id}, {
            "_id": payload_id,
            "dlq": letter.topic,
            "key": Binary(_as_bytes(letter.key) or b"") if letter.key is not None else None,
            "value": Binary(letter.value) if letter.value is not None else None,
            "headers": [[name, Binary(_as_bytes(value) or b"")] for name, value in original.items()],
            "annotations": {k: v for k, v in letter.headers.items() if k.startswith(DLQ_HEADER_PREFIX)
                            and isinstance(v, str)},
            "stored_at": stored_at,
        }, upsert=True)
        return payload_reference(self.database, payload_id)

    async def fetch(self, payload_id: str) -> dict[str, Any] | None:
        """A stored payload: key, value and original headers as bytes (None when unknown)."""
        document = await self._db[PAYLOAD_COLLECTION].find_one({"_id": payload_id})
        if document is None:
            return None
        return {
            "dlq": document.get("dlq"),
            "key": bytes(document["key"]) if document.get("key") is not None else None,
            "value": bytes(document["value"]) if document.get("value") is not None else None,
            "headers": [(name, bytes(value)) for name, value in document.get("headers", [])],
            "stored_at": document.get("stored_at"),
        }
