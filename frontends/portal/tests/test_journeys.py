"""One full journey per role in Chromium, through the gateway, with real Keycloak sign-in.

Each journey runs twice: on a desktop in Bahasa Indonesia with JavaScript (htmx) on, and on a 360×740 phone in
English with JavaScript off (every core form is a plain HTML form). Every page visited is checked by axe-core,
searched for tokens and photographed into test-artifacts/portal/.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from ksbb_kit.testing.identity import Mailpit
from ksbb_kit.testing.waiting import eventually
from portal_testing import PASSWORD, Browser, Stack, Visitor, sign_in, sign_up

pytestmark = pytest.mark.e2e

VARIANTS = [
    pytest.param({"lang": "id", "phone": False, "javascript": True}, id="desktop-id-js"),
    pytest.param({"lang": "en", "phone": True, "javascript": False}, id="phone-en-nojs"),
]


async def visitor_for(browser: Browser, stack: Stack, name: str, variant: dict[str, Any]) -> Visitor:
    """A fresh tab for one variant, its language chosen with the switch (remembered by a cookie)."""
    context = await browser.context(phone=variant["phone"], javascript=variant["javascript"], lang=variant["lang"])
    visitor = Visitor(stack, await context.new_page(), f"{name}-{'phone-en' if variant['phone'] else 'desktop-id'}",
                      javascript=variant["javascript"])
    await visitor.goto(f"/?lang={variant['lang']}")
    return visitor


def text_for(variant: dict[str, Any], indonesian: str, english: str) -> str:
    """The text a variant's page shows."""
    return english if variant["lang"] == "en" else indonesian


@pytest.mark.parametrize("variant", VARIANTS)
async def test_donor_signs_up_finds_a_need_and_pledges_after_someone_else_took_most_of_it(
    stack: Stack, world: Any, browser: Browser, mailpit: Mailpit, variant: dict[str, Any],
) -> None:
    unit = stack.data["unit"]
    need_id = await world.need(unit["recipient_id"], quantity=40)
    donor = await visitor_for(browser, stack, "donor-journey", variant)
    page = donor.page
    try:
        await sign_up(donor, mailpit, f"donatur-{secrets.token_hex(4)}@ksbb.example", PASSWORD)
        assert page.url.startswith(stack.portal + "/needs")

        # Filter the open needs (kind, item, urgency) and find this need with its progress bar.
        await donor.choose("#f-kind", "rw_rentan")
        await donor.choose("#f-item", "sembako")
        await donor.choose("#f-priority", "high")
        await page.click("#apply-filters")
        await page.wait_for_selector(f"[data-need-id='{need_id}']", timeout=15000)
        await donor.check("needs-filtered")
        card = page.locator(f"[data-need-id='{need_id}']")
        assert "0 " in await card.locator(".progress-text").inner_text()

        await card.locator("h2 a").click()
        await page.wait_for_url(f"{stack.portal}/needs/{need_id}")
        await donor.check()
        await page.click("#pledge-link")
        await page.wait_for_url(f"{stack.portal}/needs/{need_id}/pledge")
        await donor.check()
        hint = await page.inner_text("#f-quantity-hint")
        assert "40" in hint

        # While the form is open someone else pledges 35 of the 40 packages.
        await world.pledge(need_id, 35)
        await page.fill("#f-quantity", "10")
        await page.check("#f-mode-2")  # through a distribution partner
        await page.fill("#f-note", text_for(variant, "Diantar Sabtu pagi", "Delivered on Saturday morning"))
        answer = await donor.submit("#pledge-submit")
        assert answer.status == 409
        notice = await page.inner_text("#notice")
        assert "5" in notice and text_for(variant, "tersisa", "remain") in notice
        assert await page.input_value("#f-quantity") == "10", "what the donor typed is kept"
        assert await page.get_attribute("#f-quantity", "aria-invalid") == "true"
        assert await page.input_value("#f-note") == text_for(variant, "Diantar Sabtu pagi",
                                                             "Delivered on Saturday morning")

        await page.fill("#f-quantity", "5")
        answer = await donor.submit("#pledge-submit")
        assert "/my/pledges/" in page.url
        status = await page.inner_text("#pledge-status")
        assert status == text_for(variant, "dijanjikan", "pledged")

        # The recipient's contact with the 2×24 h reminder (replicated to the pledges service by an event).
        async def contact_shown() -> bool:
            await page.reload()
            return await page.locator("#contact-reminder").count() == 1

        await eventually(contact_shown, within=30, interval=1, what="the recipient contact on the pledge page")
        reminder = await page.inner_text("#contact-reminder")
        assert "81234567890" in reminder and "WIB" in reminder
        await donor.check("pledge-contact")

        await donor.goto("/my/pledges")
        assert await page.locator("#pledge-list [data-pledge-id]").count() == 1
    finally:
        await page.context.close()


@pytest.mark.parametrize("variant", VARIANTS)
async def test_facilitator_verifies_a_new_recipient_and_confirms_a_pledge(
    stack: Stack, world: Any, browser: Browser, variant: dict[str, Any],
) -> None:
    newcomer = await world.recipient(status="registered", name=f"Panti Asuhan Kasih {secrets.token_hex(2)}")
    unit = stack.data["unit"]
    need_id = await world.need(unit["recipient_id"], quantity=30)
    pledge_id = await world.pledge(need_id, 12)
    staff = await visitor_for(browser, stack, "facilitator-journey", variant)
    page = staff.page
    try:
        await sign_in(staff, stack.accounts["facilitator"], start="/auth/sign-in?next=/portal/org/verification")
        assert page.url.startswith(stack.portal + "/org/verification")
        card = page.locator(f"[data-recipient-id='{newcomer['recipient_id']}']")
        assert await card.count() == 1, "the newly registered recipient waits in the queue"
        rid = newcomer["recipient_id"]
        await card.locator("details summary").click()
        await page.fill(f"#vn-{rid}", text_for(variant, "Survei lapangan, KTP pengurus diperiksa", "Site visit"))
        await page.fill(f"#vd-{rid}", "SK-2020-17")
        await staff.submit(f"#verify-{rid}")
        assert page.url.startswith(stack.portal + "/org/verification")
        assert await page.locator(f"[data-recipient-id='{rid}']").count() == 0, "verified: out of the queue"

        await staff.goto(f"/org/recipients/{rid}")
        assert await page.inner_text("#recipient-status") == text_for(variant, "terverifikasi", "verified")
        audit = await page.inner_text("#audit")
        assert text_for(variant, "verifikasi", "verify") in audit

        # The pledge made to the organisation's active unit waits for confirmation.
        await staff.goto("/org/pledges")
        waiting = page.locator(f"#awaiting [data-pledge-id='{pledge_id}']")
        assert await waiting.count() == 1
        await waiting.locator("a").click()
        await page.wait_for_url(f"{stack.portal}/org/recipients/{unit['recipient_id']}/pledges")
        await staff.check()
        await staff.submit(f"#confirm-{pledge_id}")
        row = page.locator(f"[data-pledge-id='{pledge_id}'] .badge")
        assert await row.inner_text() == text_for(variant, "dikonfirmasi", "confirmed")
    finally:
        await page.context.close()


@pytest.mark.parametrize("variant", VARIANTS)
async def test_recipient_unit_confirms_a_partial_receipt(
    stack: Stack, world: Any, browser: Browser, variant: dict[str, Any],
) -> None:
    unit = stack.data["unit"]
    need_id = await world.need(unit["recipient_id"], quantity=20)
    pledge_id = await world.pledge(need_id, 10, until="dispatched")
    receiver = await visitor_for(browser, stack, "recipient-journey", variant)
    page = receiver.page
    try:
        await sign_in(receiver, stack.accounts["recipient"], start="/auth/sign-in?next=/portal/unit/pledges")
        assert page.url.startswith(stack.portal + "/unit/pledges")
        field = f"#rq-{pledge_id}"
        assert await page.input_value(field) == "10"
        # More than was pledged is refused next to the field, in the person's language.
        await page.fill(field, "12")
        answer = await receiver.submit(f"#receive-{pledge_id}")
        assert answer.status == 422
        error = await page.inner_text(f"#rq-{pledge_id}-error")
        assert text_for(variant, "melebihi", "cannot exceed") in error
        assert await page.input_value(field) == "12", "what the person typed is kept"

        await page.fill(field, "7")
        await page.fill(f"#pr-{pledge_id}", "foto-serah-terima-01")
        await receiver.submit(f"#receive-{pledge_id}")
        card = page.locator(f"[data-pledge-id='{pledge_id}']")
        assert await card.locator(".badge").inner_text() == text_for(variant, "diterima", "delivered")
        assert "7" in await card.inner_text()

        # The need opens again for the 3 packages that did not arrive.
        await receiver.goto("/unit/needs")
        progress = await page.inner_text(f"#p-{need_id}")
        assert "7" in progress
    finally:
        await page.context.close()


@pytest.mark.parametrize("variant", VARIANTS)
async def test_facilitator_creates_a_webhook_endpoint_and_sees_a_delivery_arrive(
    stack: Stack, world: Any, browser: Browser, variant: dict[str, Any],
) -> None:
    from standardwebhooks.webhooks import Webhook

    received: list[tuple[dict[str, str], bytes]] = []

    async def receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received.append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    import uvicorn
    from ksbb_gateway.local import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    staff = await visitor_for(browser, stack, "webhook-journey", variant)
    page = staff.page
    try:
        await sign_in(staff, stack.accounts["facilitator"], start="/auth/sign-in?next=/portal/org/webhooks")
        await page.click("#new-endpoint")
        await page.wait_for_url(f"{stack.portal}/org/webhooks/new")
        await staff.check()
        await page.fill("#f-url", f"http://127.0.0.1:{port}/ksbb")
        await page.fill("#f-description", "Sistem gudang kami")
        await page.check("#f-event_types-1")  # pledges
        answer = await staff.submit("#endpoint-submit")
        assert answer.status == 201
        secret = await page.input_value("#secret")
        assert secret.startswith("whsec_")
        await page.click("#to-endpoint")
        await page.wait_for_load_state("load")
        await staff.check("endpoint")
        assert secret not in await page.content(), "the secret is shown once only"

        await staff.submit("#send-test")

        async def delivered() -> bool:
            if not received:
                return False
            await page.goto(page.url)
            status = page.locator("#delivery-log .delivery-status")
            shown = await status.first.inner_text() if await status.count() else ""
            return text_for(variant, "terkirim", "delivered") in shown

        await eventually(delivered, within=60, interval=1, what="the test delivery in the delivery log")
        await staff.check("delivery-log")
        headers, body = received[0]
        Webhook(secret).verify(body, {"webhook-id": headers["webhook-id"], "webhook-timestamp":
                                      headers["webhook-timestamp"], "webhook-signature": headers["webhook-signature"]})
        row = page.locator("#delivery-log tbody tr").first
        assert "200" in await row.inner_text()
    finally:
        await page.context.close()
        server.should_exit = True
        await serving

