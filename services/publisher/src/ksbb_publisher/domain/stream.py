"""The live feed's rules (pure): what a client's stream position means, when a resume replays and when it
resets, and how many live streams one client address and the whole service hold."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ksbb_contracts import limits

from ksbb_publisher.domain.errors import InvalidStreamPosition, StreamCapacityReached, TooManyStreams

#: A feed cursor from before sequence numbers existed (`<event time>~<event id>`), printable ASCII only.
LEGACY_CURSOR = re.compile(r"[\x21-\x7e]*~[\x21-\x7e]*")


def parse_position(value: str, field_name: str) -> int | str:
    """A stream position: the `seq` (SSE id) of the last entry seen, or a legacy feed cursor.

    Refused (InvalidStreamPosition, naming the header or parameter it came in) unless it is ASCII digits
    below 2^63 — not `²` or other Unicode digits, not a 5,000-digit number — or a short legacy cursor.
    """
    text = value.strip()
    if text.isascii() and text.isdigit():
        if len(text) > limits.STREAM_SEQ_DIGITS_MAX:
            raise InvalidStreamPosition(field_name)
        return int(text)
    if len(text) <= limits.STREAM_CURSOR_MAX and LEGACY_CURSOR.fullmatch(text):
        return text
    raise InvalidStreamPosition(field_name)


def must_reset(resumed: int, latest: int, max_replay: int) -> bool:
    """Whether a client resuming after `resumed` is told to reload instead of being replayed its backlog.

    Feed sequence numbers have no gaps, so the backlog is `latest - resumed`: beyond `max_replay` entries
    (or a position the feed never reached) the client gets a `reset` and reloads the page instead.
    """
    return resumed > latest or latest - resumed > max_replay


@dataclass
class StreamCapacity:
    """Open live streams per client address and in total; admits a new one only within both limits."""

    per_client: int
    total: int
    retry_after_seconds: int
    open: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        """Streams open now."""
        return sum(self.open.values())

    def admit(self, client: str) -> None:
        """Count a new stream of a client; refused when the client or the service is at its limit."""
        if self.open[client] >= self.per_client:
            raise TooManyStreams(self.per_client, self.retry_after_seconds)
        if self.count >= self.total:
            raise StreamCapacityReached(self.total, self.retry_after_seconds)
        self.open[client] += 1

    def release(self, client: str) -> None:
        """A stream of the client ended."""
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]
