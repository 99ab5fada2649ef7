"""What one decision does to an aggregate: its state after, the fields that changed, and the events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ksbb_contracts import Event, Topic
from pydantic import BaseModel

A = TypeVar("A", bound=BaseModel)


@dataclass(frozen=True)
class Erasure:
    """A tombstone for `key` on a compacted topic (erases what was published under it)."""

    topic: Topic
    key: str


@dataclass(frozen=True)
class Change(Generic[A]):
    """One single-document write: set `fields` to their values in `after`, remove `cleared`, append to
    history lists (`appended`: field name, entry), and publish `events` then `erasures` with it."""

    after: A
    fields: tuple[str, ...] = ()
    cleared: tuple[str, ...] = ()
    appended: tuple[tuple[str, BaseModel], ...] = ()
    events: tuple[Event, ...] = ()
    erasures: tuple[Erasure, ...] = ()


@dataclass(frozen=True)
class Author:
    """Who makes a change, as recorded in audit trails and histories."""

    subject: str
    role: str

    @classmethod
    def system(cls) -> Author:
        """The service itself (sweeps, recurrence)."""
        return cls(subject="system", role="system")


def changed_fields(before: BaseModel, after: BaseModel, candidates: Iterable[str]) -> tuple[str, ...]:
    """The candidate fields whose value differs between two states of an aggregate (in candidate order)."""
    return tuple(name for name in candidates if getattr(before, name) != getattr(after, name))
