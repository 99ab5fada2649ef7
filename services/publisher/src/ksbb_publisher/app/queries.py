"""Public queries over the read models: recipients, needs, organisations, feed pages, statistics, gaps."""

from __future__ import annotations

from contextlib import aclosing
from datetime import datetime
from typing import Any

from ksbb_publisher.app.ports import Doc, NeedQuery, ReadModels, RecipientQuery
from ksbb_publisher.domain.coverage import coverage_report
from ksbb_publisher.domain.errors import NoPublicNeed, NoPublicRecipient
from ksbb_publisher.domain.feed import public_feed_entry
from ksbb_publisher.domain.statistics import programme_statistics
from ksbb_publisher.domain.views import public_need, public_organisation, public_recipient

Page = tuple[list[dict[str, Any]], str | None]
#: Chunks (of a page and one) of the needs collection one page of needs may read before it ends short.
NEEDS_SCAN_CHUNKS = 20


class PublicQueries:
    """Everything the public API and pages read; every result is a public view."""

    def __init__(self, read_models: ReadModels) -> None:
        self._read = read_models

    # -- recipients and needs ----------------------------------------------------------------------

    async def _public_recipients(self, docs: list[Doc]) -> list[dict[str, Any]]:
        ids = [d["_id"] for d in docs]
        orgs = await self._read.organisation_names(d["organisation_id"] for d in docs)
        open_needs = await self._read.open_need_counts(ids)
        delivered = await self._read.delivered_by_recipient(ids)
        return [public_recipient(d, orgs, open_needs, delivered) for d in docs]

    async def recipients(
        self,
        *,
        kota: str | None = None,
        kecamatan: str | None = None,
        kelurahan: str | None = None,
        kind: str | None = None,
        has_open_needs: bool | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> Page:
        """A page of public recipients ordered by id, and the id to continue after."""
        ids_in = ids_not_in = None
        if has_open_needs is not None:
            with_open = sorted(await self._read.open_need_counts())
            ids_in, ids_not_in = (with_open, None) if has_open_needs else (None, with_open)
        query = RecipientQuery(kota, kecamatan, kelurahan, kind, status, ids_in, ids_not_in, after)
        docs = await self._read.recipient_docs(query, limit + 1)
        more = len(docs) > limit
        docs = docs[:limit]
        items = await self._public_recipients(docs)
        return items, (docs[-1]["_id"] if more and docs else None)

    async def recipient(self, recipient_id: str) -> dict[str, Any]:
        """One public recipient with its needs."""
        doc = await self._read.recipient_doc(recipient_id)
        if doc is None:
            raise NoPublicRecipient(recipient_id)
        [result] = await self._public_recipients([doc])
        result["needs"], _ = await self.needs(recipient_id=recipient_id, limit=200)
        return result

    async def needs(
        self,
        *,
        recipient_id: str | None = None,
        status: str | None = None,
        item: str | None = None,
        kota: str | None = None,
        kecamatan: str | None = None,
        kelurahan: str | None = None,
        kind: str | None = None,
        priority: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> Page:
        """A page of needs of public recipients ordered by id, and the id to continue after.

        Needs of unpublished recipients (and, with `kind`, of other kinds of recipient) are dropped from
        chunks read by id; at most NEEDS_SCAN_CHUNKS chunks are read for one page, so a rare kind cannot
        make one request read the whole collection: the page may then be short, and its cursor continues
        after the last need read.
        """
        query = NeedQuery(recipient_id, status, item, kota, kecamatan, kelurahan, after, priority)
        docs: list[Doc] = []
        recipients: dict[str, Doc] = {}
        chunk: list[Doc] = []
        chunks_read = 0
        last_read: str | None = None

        async def keep_public() -> None:
            found = await self._read.recipient_summaries(d["recipient_id"] for d in chunk)
            wanted = {k: v for k, v in found.items() if not kind or v.get("kind") == kind}
            recipients.update(wanted)
            docs.extend(d for d in chunk if d["recipient_id"] in wanted)
            chunk.clear()

        async with aclosing(self._read.need_docs(query, batch=limit + 1)) as found:
            async for doc in found:
                chunk.append(doc)
                last_read = doc["_id"]
                if len(chunk) > limit:
                    await keep_public()
                    chunks_read += 1
                    if len(docs) > limit or chunks_read >= NEEDS_SCAN_CHUNKS:
                        break
            else:
                last_read = None  # the collection ended: nothing to continue after
        await keep_public()
        more = len(docs) > limit
        docs = docs[:limit]
        orgs = await self._read.organisation_names(d.get("organisation_id") or "" for d in docs)
        items = [public_need(d, recipients, orgs) for d in docs]
        if more:
            return items, items[-1]["need_id"]
        return items, last_read

    async def need(self, need_id: str) -> dict[str, Any]:
        """One need of a public recipient."""
        doc = await self._read.need_doc(need_id)
        if doc is None:
            raise NoPublicNeed(need_id)
        recipients = await self._read.recipient_summaries([doc["recipient_id"]])
        if doc["recipient_id"] not in recipients:
            raise NoPublicNeed(need_id)
        orgs = await self._read.organisation_names([doc.get("organisation_id") or ""])
        return public_need(doc, recipients, orgs)

    async def organisations(self) -> list[dict[str, Any]]:
        """Every facilitator organisation (public facts)."""
        return [public_organisation(d) for d in await self._read.organisation_docs()]

    # -- feed --------------------------------------------------------------------------------------

    async def render_feed(self, entries: list[Doc]) -> list[dict[str, Any]]:
        """Public feed entries: donor names resolved now (so an opt-out applies to history too)."""
        donors = await self._read.donor_names(e["donor_id"] for e in entries)
        recipients = await self._read.recipient_summaries(e["recipient_id"] for e in entries)
        return [
            public_feed_entry(
                e, donors.get(e["donor_id"]), (recipients.get(e["recipient_id"]) or {}).get("name")
            )
            for e in entries
        ]

    async def feed(self, *, before: str | None = None, limit: int = 50, recipient_id: str | None = None) -> Page:
        """A page of feed entries, newest first, and the cursor to continue before."""
        docs = await self._read.feed_docs(before=before, recipient_id=recipient_id, limit=limit + 1)
        more = len(docs) > limit
        docs = docs[:limit]
        return await self.render_feed(docs), (docs[-1]["cursor"] if more and docs else None)

    async def latest_feed_seq(self) -> int:
        """The highest insertion sequence in the feed (0 when empty)."""
        return await self._read.latest_feed_seq()

    # -- statistics and coverage gaps --------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        """Recipients, households targeted and reached, packages delivered and donors per dimension."""
        return programme_statistics(
            await self._read.counted_recipients(),
            await self._read.delivered_by_recipient(),
            await self._read.live_pledge_donors(),
            await self._read.item_totals(),
        )

    async def coverage_gaps(self, now: datetime, days: int) -> dict[str, Any]:
        """Recipients (and their areas) with open needs and no delivery in the last `days` days."""
        open_needs = await self._read.open_need_counts()
        with_open = sorted(open_needs)
        last = await self._read.last_deliveries(with_open)
        recipients = await self._read.counted_recipients(with_open)
        return coverage_report(recipients, open_needs, last, now=now, days=days)
