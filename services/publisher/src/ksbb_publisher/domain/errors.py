"""Requests for something the public read models do not publish; each error names the rule it breaks."""

from __future__ import annotations


class PublicationError(Exception):
    """Base of the publisher's domain errors; `field` names the request field at fault."""

    field: str | None

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field


class UnknownAreaCode(PublicationError):
    """A filter names an area code that is not a known code of the expected level."""

    def __init__(self, value: str, level: str, field: str) -> None:
        super().__init__(f"{value!r} is not a known {level} code", field)
        self.value = value
        self.level = level


class RegistrationsNotPublished(PublicationError):
    """Unverified registrations are never published, so they cannot be asked for."""

    def __init__(self, field: str = "status") -> None:
        super().__init__("unverified registrations are not published", field)


class NoPublicRecipient(PublicationError):
    """No published recipient has this id (unknown, or still unverified)."""

    def __init__(self, recipient_id: str) -> None:
        super().__init__("no public recipient with this id", "recipient_id")
        self.recipient_id = recipient_id


class NoPublicNeed(PublicationError):
    """No need of a published recipient has this id."""

    def __init__(self, need_id: str) -> None:
        super().__init__("no public need with this id", "need_id")
        self.need_id = need_id


class NoSnapshotFile(PublicationError):
    """The snapshot does not exist (or is incomplete), or has no file of this name."""

    def __init__(self, snapshot_id: str, file_name: str) -> None:
        super().__init__("no such snapshot file", "file_name")
        self.snapshot_id = snapshot_id
        self.file_name = file_name


class InvalidStreamPosition(PublicationError):
    """A live-feed position (Last-Event-ID or `after`) is a feed sequence number or a feed cursor we handed out."""

    def __init__(self, field: str) -> None:
        super().__init__("not a position in the feed: use the `id` of an entry you received", field)


class TooManyStreams(PublicationError):
    """One client address holds at most so many live streams at once."""

    def __init__(self, limit: int, retry_after_seconds: int) -> None:
        super().__init__(f"at most {limit} live streams per client; close one first", None)
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds


class StreamCapacityReached(PublicationError):
    """The service holds at most so many live streams at once."""

    def __init__(self, limit: int, retry_after_seconds: int) -> None:
        super().__init__("the live feed is full right now; try again shortly or read /v1/public/feed", None)
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds
