"""Open data: the rows of each table from the read models, streamed as CSV with HXL or as HXL-JSON."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from ksbb_kit.jobs import map_isolated

from ksbb_publisher.app.ports import Doc, ReadModels
from ksbb_publisher.domain.opendata import (
    csv_lines,
    delivery_record,
    header_rows,
    json_row,
    need_record,
    recipient_record,
    row_values,
)
from ksbb_publisher.domain.views import public_need, public_recipient

#: Documents read and flattened together (one lookup of names and counts per batch).
BATCH = 500
#: CSV rows encoded per piece of the response.
CSV_ROWS_PER_PIECE = 200


class OpenData:
    """Builds the open-data tables from the read models, batch by batch, without holding a table in memory."""

    def __init__(self, read_models: ReadModels) -> None:
        self._read = read_models

    async def records(self, dataset: str) -> AsyncIterator[dict[str, Any]]:
        """Flat records of one open-data table, in table order."""
        batch: list[Doc] = []
        async for doc in self._read.export_docs(dataset, BATCH):
            batch.append(doc)
            if len(batch) >= BATCH:
                for record in await self._flatten(dataset, batch):
                    yield record
                batch = []
        if batch:
            for record in await self._flatten(dataset, batch):
                yield record

    async def _flatten(self, dataset: str, docs: list[Doc]) -> list[dict[str, Any]]:
        orgs = await self._read.organisation_names(d.get("organisation_id") or "" for d in docs)
        if dataset == "recipients":
            ids = [d["_id"] for d in docs]
            open_needs = await self._read.open_need_counts(ids)
            delivered = await self._read.delivered_by_recipient(ids)
            return map_isolated(docs, lambda d: recipient_record(public_recipient(d, orgs, open_needs, delivered)),
                                job="open-data-recipients", item_id=_doc_id)
        # Needs and deliveries of recipients that are not (or no longer) published are left out.
        recipients = await self._read.recipient_summaries(str(d.get("recipient_id")) for d in docs)
        docs = [d for d in docs if d.get("recipient_id") in recipients]
        # Record by record: one document that cannot be rendered is left out (logged, counted), not the file.
        if dataset == "needs":
            return map_isolated(docs, lambda d: need_record(public_need(d, recipients, orgs)),
                                job="open-data-needs", item_id=_doc_id)
        return map_isolated(
            docs, lambda d: delivery_record(d, recipients[d["recipient_id"]], orgs.get(d["organisation_id"])),
            job="open-data-deliveries", item_id=_doc_id,
        )

    async def stream(self, dataset: str, fmt: str) -> AsyncIterator[str]:
        """The text of one open-data file, piece by piece (CSV with HXL row, or HXL-JSON arrays)."""
        headers = header_rows(dataset)
        if fmt == "csv":
            yield csv_lines(headers)
            rows: list[list[Any]] = []
            async for record in self.records(dataset):
                rows.append(row_values(dataset, record))
                if len(rows) >= CSV_ROWS_PER_PIECE:
                    yield csv_lines(rows)
                    rows = []
            if rows:
                yield csv_lines(rows)
            return
        yield "[\n" + json_row(headers[0]) + ",\n" + json_row(headers[1])
        async for record in self.records(dataset):
            yield ",\n" + json_row(row_values(dataset, record))
        yield "\n]\n"

    async def etag(self, dataset: str, fmt: str) -> str:
        """A strong ETag of a live export: it changes whenever any read model changes."""
        revision = await self._read.revision()
        return '"' + hashlib.sha256(f"{dataset}.{fmt}:{revision}".encode()).hexdigest()[:32] + '"'


def _doc_id(doc: Doc) -> str:
    return str(doc.get("_id"))
