"""Public concern reports about recipients: submission, resolution, and the per-address rate limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ksbb_registry.domain.change import Author
from ksbb_registry.domain.errors import ReportRateExceeded
from ksbb_registry.domain.recipients import Recipient

#: Length of one rate-limit window (windows start on the clock hour).
RATE_WINDOW = timedelta(hours=1)
Outcome = Literal["dismissed", "corrected", "recipient_suspended", "recipient_archived"]
ReportStatus = Literal["open", "resolved"]


class Report(BaseModel):
    """A concern report (the aggregate as stored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    report_id: str
    recipient_id: str
    organisation_id: str
    text: str
    contact: str | None = None
    status: ReportStatus
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    outcome: Outcome | None = None
    resolution_note: str | None = None


class NewReport(BaseModel):
    """Command: report a concern about a recipient."""

    text: str
    contact: str | None = None


class Resolution(BaseModel):
    """Command: resolve a report with its outcome."""

    outcome: Outcome
    note: str


@dataclass(frozen=True)
class RateWindow:
    """One window of the report rate limit: [start, end)."""

    start: datetime
    end: datetime

    def counter_key(self, client: str) -> str:
        """The id of a client's counter in this window."""
        return f"{client}|{self.start.isoformat()}"

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the window ends (at least 1), for Retry-After."""
        return max(1, int((self.end - now).total_seconds()))


def rate_window(now: datetime) -> RateWindow:
    """The window `now` falls into: from the start of its clock hour, one hour long."""
    start = now.replace(minute=0, second=0, microsecond=0)
    return RateWindow(start, start + RATE_WINDOW)


def check_rate(count: int, limit: int, window: RateWindow, now: datetime) -> None:
    """The `count`-th report of a window is admitted while it does not exceed `limit`."""
    if count > limit:
        raise ReportRateExceeded(window.retry_after(now))


def submit(report_id: str, recipient: Recipient, command: NewReport, now: datetime) -> Report:
    """A new open report about a recipient (reviewed by its organisation and admins)."""
    return Report(
        report_id=report_id,
        recipient_id=recipient.recipient_id,
        organisation_id=recipient.organisation_id,
        text=command.text,
        contact=command.contact,
        status="open",
        created_at=now,
    )


def resolve(report: Report, resolution: Resolution, author: Author, now: datetime) -> Report:
    """The report after its resolution."""
    return report.model_copy(
        update={
            "status": "resolved",
            "resolved_at": now,
            "resolved_by": author.subject,
            "outcome": resolution.outcome,
            "resolution_note": resolution.note,
        }
    )
