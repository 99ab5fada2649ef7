"""The public page in a real browser (Debian Chromium, headless): live feed, filter, no JS, accessibility."""

from __future__ import annotations

import asyncio
import runpy
from pathlib import Path
from typing import Any

import pytest
from ksbb_kit.testing.kafka import publish_events
from ksbb_kit.testing.service import served
from ksbb_publisher.bootstrap import create_app
from ksbb_publisher.settings import PublisherSettings

# The publisher's test support lives with its tests, outside any importable package.
_SUPPORT = runpy.run_path(str(Path(__file__).resolve().parents[2] / "services/publisher/tests/support.py"))
NOW, donor, ledger, minutes, need, organisation, pledge, recipient = (
    _SUPPORT[name] for name in ("NOW", "donor", "ledger", "minutes", "need", "organisation", "pledge", "recipient")
)

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = HERE.parent.parent / "test-artifacts"
GAMBIR, PENJARINGAN = "31.71.01.1001", "31.72.01.1001"


def require_tools() -> None:
    """Fail (never skip) with instructions when the browser or axe-core is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's Chromium (`apt-get install -y chromium`); "
            "Playwright must not download its own browser.",
            pytrace=False,
        )
    if not AXE.exists():
        pytest.fail(f"{AXE} not found: run `npm ci` (or `npm install`) in tests/browser.", pytrace=False)


async def test_public_page_live_feed_filter_no_js_and_accessibility(kit_env: dict[str, Any]) -> None:
    require_tools()
    from playwright.async_api import async_playwright

    settings = PublisherSettings(**kit_env, sse_heartbeat_seconds=1, feed_poll_seconds=0.5)
    boot, prefix = settings.kafka_bootstrap, settings.topic_prefix
    app = create_app(settings)
    async with served(app) as base:
        await publish_events(
            boot,
            prefix,
            [
                organisation("org_b", "Yayasan Bersama"),
                recipient("rcp_b1", "org_b", GAMBIR, "RW 07 Gambir", households=60),
                recipient("rcp_b2", "org_b", PENJARINGAN, "RW 02 Penjaringan", households=30),
                need("need_b1", "rcp_b1", "org_b", GAMBIR, quantity=60),
                need("need_b2", "rcp_b2", "org_b", PENJARINGAN, quantity=30),
                ledger("need_b1", "rcp_b1", requested=60, committed=10, delivered=20, version=2),
                donor("donor_b", "Komunitas Berbagi", show=True),
                pledge("plg_b0", "need_b1", "rcp_b1", "org_b", "donor_b", GAMBIR, at=NOW),
            ],
        )
        db = app.state.parts.db
        deadline = asyncio.get_running_loop().time() + 40
        while not (
            await db.feed.count_documents({}) == 1
            and await db.recipients.count_documents({}) == 2
            and await db.needs.count_documents({"version": {"$exists": True}, "ledger_version": 2}) == 1
        ):
            assert asyncio.get_running_loop().time() < deadline, "scenario not projected"
            await asyncio.sleep(0.2)

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = await browser.new_page()
                await page.goto(base + "/")
                assert await page.get_attribute("html", "lang") == "id"
                assert "RW 07 Gambir" in await page.inner_text("#recipient-list")
                await page.wait_for_function(
                    "document.getElementById('live-status').textContent.includes('langsung')", timeout=15000
                )
                await page.evaluate("window.__notReloaded = true")

                await publish_events(
                    boot,
                    prefix,
                    [
                        pledge(
                            "plg_b1",
                            "need_b2",
                            "rcp_b2",
                            "org_b",
                            "donor_b",
                            PENJARINGAN,
                            quantity=12,
                            at=NOW + minutes(10),
                        )
                    ],
                )
                await page.wait_for_function(
                    "document.querySelector('#feed li').textContent.includes('RW 02 Penjaringan')",
                    timeout=20000,
                )
                first = await page.inner_text("#feed li:first-child")
                assert "Komunitas Berbagi" in first and "12" in first
                assert await page.evaluate("window.__notReloaded === true")  # updated without reload

                await page.select_option("#f-kota", "31.72")
                await page.click("#f-apply")
                await page.wait_for_url("**kota=31.72**")
                listed = await page.inner_text("#recipient-list")
                assert "RW 02 Penjaringan" in listed and "RW 07 Gambir" not in listed

                await page.goto(base + "/")
                await page.add_script_tag(path=str(AXE))
                result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
                serious = [
                    (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                    for v in result["violations"]
                    if v["impact"] in ("serious", "critical")
                ]
                assert serious == [], serious
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "publisher-dashboard.png"), full_page=True)

                no_js = await browser.new_context(java_script_enabled=False)
                static = await no_js.new_page()
                await static.goto(base + "/?lang=en")
                assert await static.get_attribute("html", "lang") == "en"
                text = await static.inner_text("main")
                assert "RW 07 Gambir" in text and "Komunitas Berbagi" in text and "Households reached" in text
                await static.goto(base + "/?kind=rw_rentan&open=1")
                assert "RW 02 Penjaringan" in await static.inner_text("#recipient-list")
                await no_js.close()
            finally:
                await browser.close()
