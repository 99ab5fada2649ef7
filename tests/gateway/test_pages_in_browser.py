"""The docs page and the public page through the gateway in a real browser: they work under its CSP.

Debian's Chromium (headless); Playwright must not download its own browser. Any Content-Security-Policy
violation, script error or request to another host fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ksbb_gateway.testing import Platform, platform

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
CSP_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


@pytest.fixture(scope="module")
async def publisher_behind_gateway(
    module_env: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> AsyncIterator[Platform]:
    async with platform(module_env, documents, services=("publisher",)) as running:
        yield running


async def test_docs_and_public_page_work_under_the_gateways_headers(publisher_behind_gateway: Platform) -> None:
    if not CHROMIUM.exists():  # noqa: ASYNC240 - one stat before the browser starts
        pytest.fail(f"{CHROMIUM} not found: install Debian's Chromium (`apt-get install -y chromium`)", pytrace=False)
    from playwright.async_api import async_playwright

    base = publisher_behind_gateway.url
    problems: list[str] = []
    elsewhere: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = await browser.new_page()
            await page.add_init_script(CSP_VIOLATIONS)
            page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
            page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
            page.on("request", lambda r: None if r.url.startswith((base, "data:")) else elsewhere.append(r.url))

            await page.goto(f"{base}/docs")
            title = page.locator(".swagger-ui .info .title")
            await title.wait_for(timeout=30000)
            assert "KSBB Platform API" in await title.inner_text()
            operations = page.locator(".swagger-ui .opblock")
            await operations.first.wait_for(timeout=30000)
            assert await operations.count() > 50
            problems += await page.evaluate("window.__violations")

            await page.goto(f"{base}/")
            await page.locator("main#main").wait_for(timeout=30000)
            # The stylesheet applied (style-src 'self'); the live-feed script ran (script-src 'self') and its
            # stream opened through the gateway (connect-src 'self'): it then shows the "live" status text.
            assert await page.evaluate("getComputedStyle(document.querySelector('a.skip')).position") != "static"
            await page.wait_for_function(
                "(() => { const s = document.getElementById('live-status'), f = document.getElementById('feed');"
                " return !!(s && f && f.dataset.live && s.textContent === f.dataset.live); })()", timeout=30000)
            problems += await page.evaluate("window.__violations")
        finally:
            await browser.close()
    assert problems == []
    assert elsewhere == [], "the pages must load nothing from other hosts (no CDN)"
