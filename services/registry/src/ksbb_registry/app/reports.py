"""Use cases of public concern reports: admit (rate limit), submit, list, resolve."""

from __future__ import annotations

from dataclasses import dataclass

from ksbb_kit.auth import Principal

from ksbb_registry.app.access import author_of, require
from ksbb_registry.app.ports import Clock, ListQuery, Page, RateCounter, RecipientStore, ReportStore
from ksbb_registry.domain import reports as rules
from ksbb_registry.domain.errors import NotFound, ReportAlreadyResolved
from ksbb_registry.domain.recipients import Recipient
from ksbb_registry.domain.reports import NewReport, Report, Resolution


@dataclass(frozen=True)
class ReportFilters:
    """Optional filters of the report list."""

    recipient_id: str | None = None
    status: str | None = None


class ReportService:
    """Concerns the public reports about recipients (no login), reviewed by admins and the organisation."""

    def __init__(
        self,
        reports: ReportStore,
        recipients: RecipientStore,
        rate: RateCounter,
        clock: Clock,
        *,
        limit_per_hour: int,
    ) -> None:
        self.reports = reports
        self.recipients = recipients
        self.rate = rate
        self.clock = clock
        self.limit_per_hour = limit_per_hour

    async def admit(self, recipient_id: str, client: str) -> None:
        """Check that the recipient exists and count the report against its client's hourly limit."""
        await self._recipient(recipient_id)
        now = self.clock.now()
        window = rules.rate_window(now)
        count = await self.rate.hit(window.counter_key(client), window.end)
        rules.check_rate(count, self.limit_per_hour, window, now)

    async def submit(self, report_id: str, recipient_id: str, command: NewReport) -> Report:
        """Store a public concern about a recipient; a retried submission returns the first one."""
        recipient = await self._recipient(recipient_id)
        return await self.reports.insert(rules.submit(report_id, recipient, command, self.clock.now()))

    async def find(
        self, principal: Principal, filters: ReportFilters, page: Page
    ) -> tuple[list[Report], str | None]:
        """Reports the caller reviews (admins: all; facilitators: their organisation's)."""
        equals: dict[str, object] = {"recipient_id": filters.recipient_id, "status": filters.status}
        equals = {name: value for name, value in equals.items() if value is not None}
        if not principal.is_admin:
            equals["organisation_id"] = principal.org_id
        return await self.reports.find(ListQuery(equals), page)

    async def resolve(self, report_id: str, resolution: Resolution, principal: Principal) -> Report:
        """Mark a report resolved with its outcome (admins and the organisation's staff)."""
        report = await self.reports.get(report_id)
        if report is None:
            raise NotFound("report", report_id)
        require(principal.is_admin or principal.is_facilitator_of(report.organisation_id))
        resolved = await self.reports.resolve_if_open(
            rules.resolve(report, resolution, author_of(principal), self.clock.now())
        )
        if resolved is None:
            raise ReportAlreadyResolved()
        return resolved

    async def forget_ended_windows(self) -> int:
        """Forget rate-limit windows that ended (no TTL indexes on the CI server)."""
        return await self.rate.forget_ended(self.clock.now())

    async def _recipient(self, recipient_id: str) -> Recipient:
        recipient = await self.recipients.get(recipient_id)
        if recipient is None:
            raise NotFound("recipient", recipient_id)
        return recipient
