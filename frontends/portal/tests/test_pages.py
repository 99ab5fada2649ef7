"""Every other page of every role, in Chromium through the gateway: each is checked by axe-core, searched for
tokens and photographed; the forms behind them do their job, including a concurrent change (412) that keeps
what the person typed."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from ksbb_kit.testing.waiting import eventually
from portal_testing import ARTIFACTS, Browser, Stack, Visitor, axe_check, sign_in

pytestmark = pytest.mark.e2e


async def tab(browser: Browser, stack: Stack, name: str, role: str | None = None, **options: Any) -> Visitor:
    """A fresh tab, signed in as a role's account when given."""
    context = await browser.context(**options)
    visitor = Visitor(stack, await context.new_page(), name, javascript=options.get("javascript", True))
    if role:
        await sign_in(visitor, stack.accounts[role])
    return visitor


async def listed(visitor: Any, need_id: str, address: str, *, pages: int = 30) -> bool:
    """Whether the needs list at `address` shows the need on one of its first pages (following "more")."""
    page, origin = visitor.page, visitor.stack.url
    response = await page.goto(visitor.stack.portal + address, wait_until="load")
    for _ in range(pages):
        assert response is not None and response.status == 200, page.url
        if await page.locator(f'[data-need-id="{need_id}"]').count():
            return True
        more = page.locator("#needs-area a.button.secondary")
        if not await more.count():
            return False
        target = await more.first.get_attribute("href")
        assert target is not None and target.startswith("/portal/needs?")
        response = await page.goto(origin + target, wait_until="load")
    return False


async def test_public_pages_for_anyone(stack: Stack, world: Any, browser: Browser) -> None:
    unit = stack.data["unit"]
    need_id = await world.need(unit["recipient_id"], quantity=15)
    visitor = await tab(browser, stack, "pages-public")
    page = visitor.page
    try:
        await visitor.goto("/")
        assert await page.locator("#browse-needs").count() == 1
        await visitor.goto("/how-to-give")
        assert "Rp200.000" in await page.inner_text("main"), "reference prices in rupiah, Indonesian style"
        await visitor.goto("/needs?kota=31.71&kecamatan=31.71.01")
        assert await page.locator("#f-kelurahan").count() == 1, "a kecamatan opens the kelurahan filter"
        # Recipient kind and urgency are filtered by the public needs API; short pages continue with "more".
        assert await listed(visitor, need_id, "/needs?kota=31.71&kind=rw_rentan&priority=high")
        assert not await listed(visitor, need_id, "/needs?kota=31.71&kind=pesantren")
        assert not await listed(visitor, need_id, "/needs?kota=31.71&kind=rw_rentan&priority=low")
        await visitor.goto(f"/needs/{need_id}")
        assert await page.locator("#pledge-sign-in").count() == 1
        await visitor.goto(f"/recipients/{unit['recipient_id']}")
        assert "80 KK" in await page.inner_text("main")
        missing = await visitor.goto("/needs/need_does_not_exist")
        assert missing.status == 404
        # The public page (publisher) on the same origin: coverage bars with a legend, gaps first, a way in.
        await page.goto(stack.url + "/")
        assert await page.locator("#coverage-legend").count() == 1
        assert await page.get_attribute("#portal-link", "href") == "/portal/"
        await page.screenshot(path=str(ARTIFACTS / "pages-public-00-public-page.png"), full_page=True)
        await axe_check(page)

        await visitor.goto("/?lang=en")
        assert await page.get_attribute("html", "lang") == "en"
        await visitor.goto("/needs")
        assert await page.get_attribute("html", "lang") == "en", "the language choice is remembered"
    finally:
        await page.context.close()


async def test_donor_offer_profile_and_pledge_cancel(stack: Stack, world: Any, browser: Browser) -> None:
    unit = stack.data["unit"]
    need_id = await world.need(unit["recipient_id"], quantity=25)
    donor = await tab(browser, stack, "pages-donor", "donor")
    page = donor.page
    try:
        await donor.goto("/my/profile")
        await page.fill("#f-display_name", "")
        await donor.submit("#profile-submit")
        assert await page.locator("#f-display_name-error").count() == 1, "the API's refusal sits next to the field"
        await page.fill("#f-display_name", "Keluarga Lestari")
        await page.fill("#f-contact-phone", "0812 3456 7890")
        await donor.submit("#profile-submit")
        assert await page.input_value("#f-display_name") == "Keluarga Lestari"
        assert not await page.is_checked("#f-show_name"), "anonymous unless the donor opts in"

        await donor.goto("/my/offers")
        await page.click("#new-offer")
        await page.wait_for_url(f"{stack.portal}/my/offers/new")
        await donor.check()
        await page.select_option("#f-item", "sembako")
        await page.fill("#f-quantity", "5")
        await page.check("#f-area_codes-2")  # Jakarta Pusat
        await donor.submit("#offer-submit")
        assert "/my/offers/" in page.url
        assert await page.locator("h2").first.count() == 1

        await donor.goto(f"/needs/{need_id}/pledge")
        await page.fill("#f-quantity", "3")
        await donor.submit("#pledge-submit")
        await donor.submit("#cancel")
        assert await page.inner_text("#pledge-status") == "dibatalkan"
        assert "dibatalkan" in await page.inner_text("#timeline")
    finally:
        await page.context.close()


async def test_facilitator_registers_edits_posts_needs_and_resolves_reports(
    stack: Stack, world: Any, browser: Browser,
) -> None:
    staff = await tab(browser, stack, "pages-facilitator", "facilitator")
    page = staff.page
    name = f"Panti Werdha Kasih {secrets.token_hex(2)}"
    try:
        await staff.goto("/org/recipients")
        await page.click("#register-recipient")
        await page.wait_for_url(f"{stack.portal}/org/recipients/new")
        await staff.check()
        await page.select_option("#f-kind", "panti_lansia")
        await page.select_option("#f-kota", "31.71")
        await staff.settle()
        await page.select_option("#f-kecamatan", "31.71.01")
        await staff.settle()
        await page.select_option("#f-kelurahan_code", "31.71.01.1001")
        await page.fill("#f-name", name)
        await page.fill("#f-street_address", "Jl. Melati No. 4")
        await page.fill("#f-beneficiaries-households", "0")
        await page.fill("#f-beneficiaries-people", "-3")
        await page.fill("#f-contact-name", "Bapak Budi")
        await page.fill("#f-contact-phone", "081298765432")
        answer = await staff.submit("#recipient-submit")
        assert answer.status == 422
        assert await page.locator("#f-beneficiaries-people-error").count() == 1
        assert await page.input_value("#f-name") == name, "typed values are kept"
        await page.fill("#f-beneficiaries-people", "40")
        await staff.submit("#recipient-submit")
        assert "/org/recipients/rcp_" in page.url
        recipient_id = page.url.rstrip("/").rpartition("/")[2]

        # Someone else changes the recipient while this form is open: 412, current values shown, typing kept.
        async with world.client("facilitator", org_id=world.org_id, subject="other-staff") as other:
            current = await other.get(f"/v1/recipients/{recipient_id}")
            changed = await other.patch(f"/v1/recipients/{recipient_id}", json={"street_address": "Jl. Mawar 9"},
                                        headers={"If-Match": current.headers["etag"]})
            assert changed.status_code == 200, changed.text
        await page.fill("#f-notes", "Dikunjungi relawan")
        answer = await staff.submit("#recipient-save")
        assert answer.status == 412
        assert await page.locator("#changed-notice").count() == 1
        assert "Jl. Mawar 9" in await page.inner_text("#f-street_address-current")
        assert await page.input_value("#f-notes") == "Dikunjungi relawan"
        await staff.submit("#recipient-save")
        assert await page.locator(".flash-success").count() == 1

        for action, reason in (("verify", "Dokumen lengkap"), ("activate", "")):
            if reason:
                await page.fill(f"#lr-{action}", reason)
            await staff.submit(f"#lifecycle-{action}")
        assert await page.inner_text("#recipient-status") == "aktif"

        await staff.goto(f"/org/recipients/{recipient_id}/needs/new")
        await page.fill("#f-quantity", "12")
        await staff.submit("#need-submit")
        assert page.url.endswith(f"/org/recipients/{recipient_id}/needs")
        assert await page.locator("#unit-needs [data-need-id]").count() == 1

        # A concern report from the public (no account) reaches the queue and is resolved.
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as public:
            async def reported() -> bool:
                made = await public.post(f"/v1/recipients/{recipient_id}/reports",
                                         json={"text": "Alamat tidak sesuai", "contact": None})
                return made.status_code == 201

            await eventually(reported, within=30, interval=0.5, what="a public concern report accepted")
        await staff.goto("/org/reports")
        assert "Alamat tidak sesuai" in await page.inner_text("#reports")
        form = page.locator("#reports form").first
        await form.locator("textarea").fill("Alamat sudah diperiksa")
        await staff.submit("#reports form button")
        assert await page.locator(".flash-success").count() == 1

        # The unit's contact person is invited from the recipient's page, listed, and can be revoked.
        await staff.goto(f"/org/recipients/{recipient_id}")
        contact = f"kontak-{secrets.token_hex(4)}@ksbb.example"
        await page.fill("#f-email", contact)
        await page.fill("#f-first_name", "Sari")
        await staff.submit("#invite-submit")
        invited = page.locator("#unit-accounts li", has_text=contact)
        assert await invited.count() == 1 and "diundang" in await invited.inner_text()
        account_id = await invited.get_attribute("data-account-id")
        await staff.submit(f"#revoke-{account_id}")
        revoked = await page.locator("#unit-accounts li", has_text=contact).inner_text()
        assert "dinonaktifkan" in revoked or "nonaktif" in revoked

        await staff.goto("/org/staff")
        await staff.goto("/org/webhooks")
        await staff.goto("/org/pledges")
    finally:
        await page.context.close()


async def test_recipient_posts_from_a_suggestion_edits_with_a_concurrent_change_and_cancels(
    stack: Stack, world: Any, browser: Browser,
) -> None:
    unit = stack.data["unit"]
    receiver = await tab(browser, stack, "pages-recipient", "recipient", phone=True, lang="en")
    page = receiver.page
    try:
        await receiver.goto("/unit/needs/new?lang=en")
        link = page.locator("text=Use this suggestion").first
        await link.click()
        await page.wait_for_load_state("load")
        await receiver.check("need-from-suggestion")
        assert await page.input_value("#f-quantity") != ""
        needed_by = (date.today() + timedelta(days=10)).isoformat()
        await page.fill("#f-needed_by", needed_by)
        await receiver.submit("#need-submit")
        assert page.url.endswith("/unit/needs")

        async with world.client("recipient", recipient_id=unit["recipient_id"]) as own:
            needs = (await own.get("/v1/needs", params={"recipient_id": unit["recipient_id"], "status": "open"})).json()
        need = next(n for n in needs["items"] if n["needed_by"] == needed_by)
        await receiver.goto(f"/unit/needs/{need['need_id']}/edit")
        async with world.client("facilitator", org_id=world.org_id, subject="other-staff") as other:
            current = await other.get(f"/v1/needs/{need['need_id']}")
            changed = await other.patch(f"/v1/needs/{need['need_id']}", json={"notes": "diubah fasilitator"},
                                        headers={"If-Match": current.headers["etag"]})
            assert changed.status_code == 200, changed.text
        await page.fill("#f-quantity", str(need["quantity"] + 5))
        answer = await receiver.submit("#need-save")
        assert answer.status == 412
        assert "diubah fasilitator" in await page.inner_text("#f-notes-current")
        assert await page.input_value("#f-quantity") == str(need["quantity"] + 5)
        await receiver.submit("#need-save")
        assert page.url.endswith("/unit/needs")

        await page.fill(f"#cancel-{need['need_id']}-reason", "Sudah dicukupi donatur lain")
        await receiver.submit(f"#cancel-{need['need_id']}")
        card = page.locator(f"[data-need-id='{need['need_id']}']")
        assert "cancelled" in await card.inner_text()
    finally:
        await page.context.close()


async def test_administrator_overview_and_organisations(stack: Stack, world: Any, browser: Browser) -> None:
    admin = await tab(browser, stack, "pages-admin", "admin")
    page = admin.page
    name = f"Lembaga Uji {secrets.token_hex(2)}"
    try:
        await admin.goto("/admin")
        assert await page.locator("#coverage").count() == 1
        await admin.goto("/admin/organisations")
        await page.click("#new-organisation")
        await page.wait_for_url(f"{stack.portal}/admin/organisations/new")
        await admin.check()
        await page.fill("#f-name", name)
        await page.fill("#f-contact-email", "bukan-email")
        answer = await admin.submit("#organisation-submit")
        assert answer.status == 422 and await page.locator("#f-contact-email-error").count() == 1
        await page.fill("#f-contact-email", "relawan@lembaga-uji.example")
        await page.check("#f-area_codes-2")
        await admin.submit("#organisation-submit")
        card = page.locator(".card", has_text=name)
        org_id = await card.get_attribute("data-organisation-id")
        await page.fill(f"#suspend-{org_id}-reason", "Dokumen kedaluwarsa")
        await admin.submit(f"#suspend-{org_id}")
        assert "ditangguhkan" in await page.locator(".card", has_text=name).inner_text()
        await page.fill(f"#reinstate-{org_id}-reason", "Dokumen diperbarui")
        await admin.submit(f"#reinstate-{org_id}")
        assert "aktif" in await page.locator(".card", has_text=name).inner_text()
        # Staff of the organisation are invited by e-mail (Keycloak sends the set-password link).
        await admin.goto(f"/admin/staff?org={org_id}")
        member = f"staf-{secrets.token_hex(4)}@ksbb.example"
        await page.fill("#f-email", "bukan-email")
        await page.fill("#f-first_name", "Rahmat")
        answer = await admin.submit("#invite-submit")
        assert answer.status == 422 and await page.locator("#f-email-error").count() == 1
        assert await page.input_value("#f-first_name") == "Rahmat"
        await page.fill("#f-email", member)
        await admin.submit("#invite-submit")
        assert await page.locator("#staff li", has_text=member).count() == 1
    finally:
        await page.context.close()
