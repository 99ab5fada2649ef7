"""The registry is authoritative for a need's terms: when a snapshot that is not newer still replaces them.

A ledger keeps the registry's need snapshot (`need_version`) and its digest (`need_digest`). After a crash
the registry may reuse a version with other content, and its anti-entropy job restates current state: a
snapshot at the held version with another digest, or a `restated` one whose digest differs, is applied.
"""

from __future__ import annotations

from typing import Any

from ksbb_contracts.events.registry import (
    RESTATED,
    SAME_VERSION_OTHER_CONTENT,
    NeedPublic,
    public_state_digest,
    snapshot_repair,
)

__all__ = ["RESTATED", "SAME_VERSION_OTHER_CONTENT", "need_repair"]


def need_repair(ledger: dict[str, Any], need: NeedPublic, *, restated: bool) -> str | None:
    """Whether a snapshot that is not newer still replaces the ledger's need terms, and why (None: it does not).

    A ledger written before digests were kept is repaired only by a restated snapshot.
    """
    held_version, held_digest = int(ledger.get("need_version", 0)), ledger.get("need_digest")
    return snapshot_repair(held_version, held_digest, need.version, public_state_digest(need), restated=restated)
