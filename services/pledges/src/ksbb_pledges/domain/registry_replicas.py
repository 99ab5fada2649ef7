"""The registry is authoritative for recipients and organisations too: when a snapshot that is not newer still
replaces this service's replica of it, or the recipient blocking a ledger keeps.

A replica keeps the snapshot's `version` and the digest of its public state (`state_digest`); a ledger keeps
its recipient's `recipient_version` and `recipient_digest`. A snapshot at the held version with another
digest, or a `restated` one whose digest differs, is applied (ADR 0005, `snapshot_repair`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ksbb_contracts.events.registry import snapshot_repair


def replica_repair(held: Mapping[str, Any] | None, version: int, digest: str, *, restated: bool) -> str | None:
    """Why a snapshot that is not newer still replaces a replica (None: it does not, or it is newer anyway)."""
    if held is None:
        return None
    held_version = int(held.get("version") or 0)
    return snapshot_repair(held_version, held.get("state_digest"), version, digest, restated=restated)


def replica_takes(held: Mapping[str, Any] | None, version: int, digest: str, *, restated: bool) -> bool:
    """Whether a snapshot replaces the replica: none held yet, an older version, or a repair."""
    if held is None or int(held.get("version") or 0) < version:
        return True
    return replica_repair(held, version, digest, restated=restated) is not None


def blocking_repair(ledger: Mapping[str, Any], version: int, digest: str, *, restated: bool) -> str | None:
    """Why a recipient snapshot that is not newer still replaces the blocking a ledger keeps (None: it does not)."""
    held_version = int(ledger.get("recipient_version") or 0)
    return snapshot_repair(held_version, ledger.get("recipient_digest"), version, digest, restated=restated)
