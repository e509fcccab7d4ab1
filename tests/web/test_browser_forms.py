"""The forms and the layout in headless Chromium, as a new conference admin meets them.

Against the real server (``python -m mrf serve``): a wrong password is an
error at the password field, and the focus is on it; a refused conference
name, participant address and policy come back after post/redirect/get with
the error next to the field (``aria-describedby``), the focus on the first one
and what was typed kept; a reload does not resubmit; a ``sips:`` address is
saved visibly normalised; the same identity again is refused; Delete needs
its confirmation; the 404 page keeps the navigation; the favicon is served.
Every page is screenshotted at 1280×800 and 390×844, checked by axe-core (0
serious findings) and for words broken across lines (:mod:`.page_checks`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ..interop.harness import MrfServer
from .page_checks import check_page
from .test_browser import CHROMIUM_FLAGS, _admin_password, _web_url, server  # noqa: F401

pytestmark = pytest.mark.interop


def _describedby_text(page: Any, selector: str) -> str:
    ids = page.locator(selector).get_attribute("aria-describedby") or ""
    return " ".join(page.locator(f"#{i}").inner_text() for i in ids.split())


def test_forms_say_what_is_wrong_at_the_field(server: MrfServer, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    shots = tmp_path / "screenshots"
    base = _web_url(server)
    password = _admin_password(server)
    heights: dict[str, dict[str, int]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS, timeout=30_000
        )
        # bypass_csp only so that axe-core can be injected; the pages' own CSP is tested elsewhere
        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{base}/login")
            check_page(page, shots, "01-login")
            page.get_by_label("Account").fill("admin")
            page.get_by_label("Password").fill("not the password")
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{base}/login")
            expect(page.locator("#password")).to_be_focused()
            assert "Wrong account name or password" in _describedby_text(page, "#password")
            expect(page.locator(".notice")).to_have_count(0)
            expect(page.get_by_label("Account")).to_have_value("admin")
            color = page.locator("#password-error").evaluate("e => getComputedStyle(e).color")
            assert color == "rgb(155, 28, 20)", color
            check_page(page, shots, "02-login-refused")
            page.reload()
            expect(page.locator("#password-error")).to_have_count(0)  # no resubmission
            page.get_by_label("Account").fill("admin")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{base}/conferences")

            page.get_by_label("Name").fill("Team Retro")
            page.get_by_role("button", name="Create").click()
            expect(page.locator("#new-name")).to_be_focused()
            assert "lower-case letters" in _describedby_text(page, "#new-name")
            expect(page.get_by_label("Name")).to_have_value("Team Retro")
            check_page(page, shots, "03-conferences-refused")
            page.get_by_label("Name").fill("retro")
            page.get_by_role("button", name="Create").click()
            expect(page.get_by_role("status")).to_contain_text("Conference created")
            conference_url = page.url

            page.get_by_label("SIP URI", exact=True).fill("bob")
            page.locator("#add-role").select_option("chair")
            page.get_by_role("button", name="Add", exact=True).click()
            expect(page.locator("#add-uri")).to_be_focused()
            assert "has no “@”" in _describedby_text(page, "#add-uri")
            expect(page.locator("#add-role")).to_have_value("chair")
            check_page(page, shots, "04-participant-refused")
            page.get_by_label("SIP URI", exact=True).fill("sips:Bob@Example.COM:5061")
            page.get_by_role("button", name="Add", exact=True).click()
            expect(page.get_by_role("status")).to_contain_text(
                "Authorized sip:Bob@example.com as chair (saved as sip:Bob@example.com"
            )
            page.get_by_label("SIP URI", exact=True).fill("sip:bob@example.com")
            page.get_by_role("button", name="Add", exact=True).click()
            assert "only in letter case" in _describedby_text(page, "#add-uri")

            # help beside each key mode and NOTIFY protection; a warning before security goes off
            page.locator("#policy > summary").click()  # the policy is folded until opened
            assert "Browsers (WebRTC)" in _describedby_text(page, "#key-mode-dtls")
            assert "IMS clients" in _describedby_text(page, "#key-mode-mikey-ticket")
            assert "most softphones" in _describedby_text(page, "#notify-optional")
            assert "every other SUBSCRIBE is refused" in _describedby_text(page, "#notify-required")
            asked: list[str] = []
            page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
            page.get_by_label("Require media security").uncheck()
            page.get_by_role("button", name="Save policy").click()
            assert asked and "unencrypted" in asked[0], asked
            page.reload()
            page.locator("#policy > summary").click()
            expect(page.get_by_label("Require media security")).to_be_checked()  # not saved
            page.once("dialog", lambda d: d.accept())
            page.get_by_label("Require media security").uncheck()
            page.get_by_role("button", name="Save policy").click()
            expect(page.get_by_role("status")).to_contain_text("Policy saved")
            expect(page.get_by_label("Require media security")).not_to_be_checked()
            page.get_by_label("Require media security").check()

            for box in page.locator('input[name="key_modes"]').all():
                box.uncheck()
            page.get_by_label("Allow anonymous callers").check()
            page.get_by_role("button", name="Save policy").click()
            expect(page.locator("#key-mode-sdes")).to_be_focused()
            assert "Tick at least one key mode" in _describedby_text(page, "#key-mode-sdes")
            expect(page.get_by_label("Allow anonymous callers")).to_be_checked()  # kept
            heights["conference"] = check_page(page, shots, "05-policy-refused")

            page.get_by_role("button", name="Delete conference retro").click()
            expect(page.locator("#delete-confirm")).to_be_focused()
            expect(page).to_have_url(f"{conference_url}#delete-title")
            page.get_by_label("Yes, delete retro and disconnect everyone").check()
            page.get_by_role("button", name="Delete conference retro").click()
            expect(page).to_have_url(f"{base}/conferences")
            expect(page.get_by_role("status")).to_contain_text("Conference retro deleted")

            # accounts and tokens in the web
            page.get_by_role("link", name="Your account").click()
            page.get_by_role("button", name="Create a token").click()
            expect(page.get_by_role("heading", name="Your new API token")).to_be_focused()
            token = page.locator("#new-token").input_value()
            assert token.startswith("mrf_")
            check_page(page, shots, "07-account-token")
            page.reload()
            expect(page.locator("#new-token")).to_have_count(0)  # shown once
            page.get_by_label("Current password").fill("wrong one")
            page.get_by_role("button", name="Change password").click()
            expect(page.locator("#current-password")).to_be_focused()
            page.get_by_role("link", name="Accounts").click()
            page.get_by_label("Name", exact=True).fill("ana")
            page.get_by_label("Password", exact=True).fill("a long password")
            page.get_by_role("button", name="Create account").click()
            expect(page.get_by_role("status")).to_contain_text("Account ana created")
            page.get_by_role("button", name="Disable ana").click()
            expect(page.get_by_role("status")).to_contain_text("Account ana disabled")
            check_page(page, shots, "08-accounts")
            sip_identity = page.get_by_role("textbox", name="SIP identity of ana")
            sip_identity.fill("ana")
            page.get_by_role("button", name="Save the SIP identity of ana").click()
            expect(sip_identity).to_be_focused()
            expect(sip_identity).to_have_attribute("aria-invalid", "true")
            expect(page.locator("p.field-error")).to_contain_text("“ana” has no “@”")
            check_page(page, shots, "09-accounts-sip-refused")
            sip_identity.fill("sips:ana@Example.COM")
            page.get_by_role("button", name="Save the SIP identity of ana").click()
            expect(page.get_by_role("status")).to_contain_text(
                "SIP identity of ana set to sip:ana@example.com (saved as"
            )
            expect(sip_identity).to_have_value("sip:ana@example.com")

            missing = page.goto(f"{base}/conferences/99")
            assert missing is not None and missing.status == 404
            expect(page.get_by_role("navigation", name="Main")).to_be_visible()
            check_page(page, shots, "06-not-found")
            icon = page.request.get(f"{base}/static/favicon.svg")
            assert icon.status == 200 and b"<svg" in icon.body()
        finally:
            browser.close()
    assert heights["conference"]["desktop"] < 3000, heights
    assert len(list(shots.glob("*.png"))) == 18
