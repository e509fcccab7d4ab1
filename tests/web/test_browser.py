"""The web UI in headless Chromium (Debian ``chromium``, driven by Playwright).

Against the real server (``python -m mrf serve`` via the interop harness) and a
real SIP client (baresip with SDES-SRTP): sign in with the first admin's printed
password, create a conference, authorize participants, watch the roster change
live (Server-Sent Events, no reload) when baresip dials in — with its key mode
and SRTP packet counts moving — mute and unmute it with the roster's button,
then remove it from the list and see the focus disconnect it (baresip gets the
BYE) and the roster empty itself.  A screenshot
of every page is saved in the test's directory.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..interop.harness import Artifacts, MrfServer, tail, wait_for
from ..interop.peers import Baresip

pytestmark = pytest.mark.interop

ALICE = "sip:alice@127.0.0.1"  # the account of tests/peers/baresip/accounts
BOB = "sip:bob@127.0.0.1"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
_PASSWORD = re.compile(r"password \(shown only once\): (\S+)")
_PACKETS = re.compile(r"audio · sdes · (\d+)/(\d+)")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MrfServer]:
    running = MrfServer(tmp_path / "server")
    running.start()
    yield running
    running.stop()
    assert "Traceback (most recent call last)" not in running.log_text(), tail(running.log, 80)


def _web_url(server: MrfServer) -> str:
    config = tomllib.loads(server.config.read_text())
    return f"http://127.0.0.1:{config['web']['port']}"


def _admin_password(server: MrfServer) -> str:
    match = wait_for(lambda: _PASSWORD.search(server.log_text()), 5)
    assert match, f"no first-admin password printed:\n{tail(server.log)}"
    return match.group(1)


def test_the_conference_pages_and_the_live_roster(server: MrfServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    shots = tmp_path / "screenshots"
    base = _web_url(server)
    password = _admin_password(server)
    ua: Baresip | None = None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS, timeout=30_000
        )
        page = browser.new_page(viewport={"width": 1000, "height": 1200})
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{base}/login")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            page.screenshot(path=shots / "1-login.png", full_page=True)
            page.get_by_label("Account").fill("admin")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{base}/conferences")
            page.screenshot(path=shots / "2-conferences.png", full_page=True)

            page.get_by_label("Name").fill("webconf")
            page.get_by_role("button", name="Create").click()
            # the dial-in URI carries the port the server listens on (docs/web.md)
            expect(page.locator("#uri")).to_have_value(server.request_uri("webconf"))
            expect(page.get_by_role("status")).to_contain_text("Conference created")
            for uri, role in ((ALICE, "participant"), (BOB, "chair")):
                page.get_by_label("SIP URI", exact=True).fill(uri)
                page.locator("#add-role").select_option(role)
                page.get_by_role("button", name="Add", exact=True).click()
                expect(page.get_by_role("status")).to_contain_text(f"Authorized {uri}")
            expect(page.locator("#roster")).to_have_attribute("data-live", "1")
            page.screenshot(path=shots / "3-conference.png", full_page=True)

            ua = Baresip(Artifacts(tmp_path / "peers"))
            assert ua.command("dial", server.request_uri("webconf")).get("ok")
            established = ua.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 10)
            assert established and established["type"] == "CALL_ESTABLISHED", ua.events
            row = page.locator(f'#roster tbody tr[data-uri="{ALICE}"]')  # built by roster.js
            expect(row).to_contain_text("connected")
            expect(row).to_contain_text("audio · sdes")
            first = [int(n) for n in _PACKETS.search(row.inner_text()).groups()]  # type: ignore[union-attr]
            page.wait_for_function(
                "([uri, before]) => { const r = document.querySelector("
                '`#roster tr[data-uri="${uri}"]`); const m = r && r.textContent.match('
                "/sdes · (\\d+)\\/(\\d+)/); return m && Number(m[1]) > before; }",
                arg=[ALICE, first[0]],
            )
            page.screenshot(path=shots / "4-roster-live.png", full_page=True)

            # mute from the roster: PATCH with X-CSRF-Token, the SSE update redraws the row
            page.get_by_role("button", name=f"Mute {ALICE}", exact=True).click()
            expect(row).to_contain_text("connected · muted")
            unmute = page.get_by_role("button", name=f"Unmute {ALICE}", exact=True)
            expect(unmute).to_have_attribute("aria-pressed", "true")
            assert "muted" not in page.locator("#roster-status").inner_text()
            unmute.click()
            expect(page.get_by_role("button", name=f"Mute {ALICE}", exact=True)).to_be_visible()
            expect(row).not_to_contain_text("muted")

            page.get_by_role("button", name=f"Remove {ALICE}").click()
            # she is connected: the page asks before it de-authorizes and hangs up
            expect(page.get_by_role("heading", name=f"Remove {ALICE}?")).to_be_focused()
            page.get_by_role("button", name="Remove and hang up").click()
            expect(page.get_by_role("status")).to_contain_text(f"Removed {ALICE}")
            closed = ua.wait_event({"CALL_CLOSED"}, 10)
            assert closed is not None, f"baresip was not disconnected: {ua.events}"
            expect(page.locator("#roster .empty")).to_be_visible()
            expect(page.locator(f'#roster tr[data-uri="{ALICE}"]')).to_have_count(0)
            page.screenshot(path=shots / "5-removed.png", full_page=True)

            page.locator("#policy > summary").click()  # the policy is folded until opened
            page.get_by_label("Allow anonymous callers").check()
            page.get_by_role("button", name="Save policy").click()
            expect(page.get_by_role("status")).to_contain_text("Policy saved")
            expect(page.get_by_label("Allow anonymous callers")).to_be_checked()
            page.get_by_label("Yes, delete webconf and disconnect everyone").check()
            page.get_by_role("button", name="Delete conference webconf").click()
            expect(page).to_have_url(f"{base}/conferences")
            expect(page.get_by_text("No conferences yet.")).to_be_visible()
            page.screenshot(path=shots / "6-deleted.png", full_page=True)
        finally:
            browser.close()
            if ua is not None:
                ua.close()
    assert len(list(shots.glob("*.png"))) == 6
