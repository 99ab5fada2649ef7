"""Paging of the public needs list with filters the read model cannot index (recipient kind): one page reads a
bounded number of chunks, may end short with a cursor, and following the cursors finds every match once."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

import pytest
from ksbb_publisher.app import queries as queries_module
from ksbb_publisher.app.ports import NeedQuery
from ksbb_publisher.app.queries import PublicQueries

pytestmark = pytest.mark.unit


class NeedsOnly:
    """The three read-model queries the needs list uses, over lists (ordered by id, as the store answers)."""

    def __init__(self, needs: list[dict[str, Any]], recipients: dict[str, dict[str, Any]]) -> None:
        self.needs = sorted(needs, key=lambda d: d["_id"])
        self.recipients = recipients
        self.read = 0

    async def need_docs(self, query: NeedQuery, batch: int) -> AsyncGenerator[dict[str, Any], None]:
        for doc in self.needs:
            if (query.after and doc["_id"] <= query.after) or (query.priority and doc["priority"] != query.priority):
                continue
            self.read += 1
            yield doc

    async def recipient_summaries(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {i: self.recipients[i] for i in set(ids) if i in self.recipients}

    async def organisation_names(self, ids: Iterable[str]) -> dict[str, str]:
        return {}


def need(i: int, recipient: str, priority: str = "high") -> dict[str, Any]:
    return {"_id": f"need_{i:05d}", "recipient_id": recipient, "item": "sembako", "quantity": 10, "unit": "paket",
            "priority": priority, "needed_by": "2026-12-01", "status": "open", "kota_code": "31.71"}


RECIPIENTS = {
    "rcp_rw": {"_id": "rcp_rw", "name": "RW 03", "kind": "rw_rentan"},
    "rcp_panti": {"_id": "rcp_panti", "name": "Panti Kasih", "kind": "panti_asuhan"},
}


async def all_pages(queries: PublicQueries, **filters: Any) -> tuple[list[str], int]:
    found: list[str] = []
    cursor, pages = None, 0
    while True:
        items, cursor = await queries.needs(after=cursor, limit=10, **filters)
        pages += 1
        found += [n["need_id"] for n in items]
        if cursor is None:
            return found, pages


async def test_a_rare_kind_reads_bounded_chunks_per_page_and_the_cursors_find_every_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queries_module, "NEEDS_SCAN_CHUNKS", 3)
    # 100 needs of an RW, then one of a panti, 100 more of the RW, one more panti, and one of an unpublished one.
    needs = [need(i, "rcp_rw") for i in range(100)] + [need(100, "rcp_panti")]
    needs += [need(i, "rcp_rw") for i in range(101, 201)] + [need(201, "rcp_panti"), need(202, "rcp_gone")]
    store = NeedsOnly(needs, RECIPIENTS)
    queries = PublicQueries(store)  # type: ignore[arg-type]

    items, cursor = await queries.needs(kind="panti_asuhan", limit=10)
    assert items == [] and cursor is not None, "a page that found nothing in its chunks still continues"
    assert store.read <= 3 * 11, "one page reads at most NEEDS_SCAN_CHUNKS chunks of a page and one"

    found, pages = await all_pages(queries, kind="panti_asuhan")
    assert found == ["need_00100", "need_00201"] and pages > 2
    everything, _ = await all_pages(queries)
    assert len(everything) == len(set(everything)) == 202, "every published need once, none of the unpublished"
    rw_only, _ = await all_pages(queries, kind="rw_rentan")
    assert len(rw_only) == 200 and "need_00100" not in rw_only


async def test_kind_and_urgency_filters_combine_and_full_pages_continue_after_their_last_need() -> None:
    needs = [need(i, "rcp_rw" if i % 2 else "rcp_panti", "high" if i % 3 else "low") for i in range(60)]
    queries = PublicQueries(NeedsOnly(needs, RECIPIENTS))  # type: ignore[arg-type]
    items, cursor = await queries.needs(kind="panti_asuhan", priority="low", limit=3)
    assert [n["need_id"] for n in items] == ["need_00000", "need_00006", "need_00012"]
    assert cursor == "need_00012"
    found, _ = await all_pages(queries, kind="panti_asuhan", priority="low")
    assert found == [f"need_{i:05d}" for i in range(60) if i % 2 == 0 and i % 3 == 0]
