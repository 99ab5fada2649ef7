"""`make run` demo: wait until the public page shows what the other seeds created, then say where to look."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from ksbb_kit.demo import DemoContext


def _ids(state: dict[str, Any], service: str, key: str) -> list[str]:
    value = (state.get(service) or {}).get(key) or []
    return [v if isinstance(v, str) else str(v.get("pledge_id") or v.get("id")) for v in value]


async def _settled_totals(client: httpx.AsyncClient, *, quiet_polls: int = 4, limit: float = 60.0) -> dict[str, Any]:
    """Public totals once the publisher has caught up (unchanged over a few polls), so the summary is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    previous: dict[str, Any] | None = None
    unchanged = 0
    while True:
        totals: dict[str, Any] = (await client.get("/v1/public/stats")).json().get("totals", {})
        unchanged = unchanged + 1 if totals == previous else 0
        if unchanged >= quiet_polls or loop.time() > deadline:
            return totals
        previous = totals
        await asyncio.sleep(0.5)


async def seed(ctx: DemoContext) -> None:
    """Wait for the recipients and pledges of the other seeds to be projected; print the dashboard URL."""
    base = ctx.urls["publisher"]
    recipients = _ids(ctx.state, "registry", "recipients")
    pledges = _ids(ctx.state, "pledges", "pledges")
    async with ctx.client("publisher") as client:
        if recipients:

            async def recipients_visible() -> bool:
                # Only verified/active recipients are public: wait until one of the seeded ones shows.
                for recipient_id in recipients[:20]:
                    if (await client.get(f"/v1/public/recipients/{recipient_id}")).status_code == 200:
                        return True
                return False

            try:
                await ctx.eventually(
                    recipients_visible, timeout=90, what="seeded recipients on the public API"
                )
            except TimeoutError as exc:
                print(f"  publisher: {exc}", flush=True)
        if pledges:

            async def feed_has_pledges() -> bool:
                try:
                    items = (await client.get("/v1/public/feed", params={"limit": 200})).json()["items"]
                except (httpx.HTTPError, KeyError, ValueError):
                    return False
                return bool({e["pledge_id"] for e in items} & set(pledges))

            try:
                await ctx.eventually(feed_has_pledges, timeout=90, what="seeded pledges in the public feed")
            except TimeoutError as exc:
                print(f"  publisher: {exc}", flush=True)
        stats = await _settled_totals(client)
    print(
        f"  publisher: {stats.get('recipients', 0)} public recipients, "
        f"{stats.get('packages_delivered', 0)} packages delivered — dashboard {base}/",
        flush=True,
    )
