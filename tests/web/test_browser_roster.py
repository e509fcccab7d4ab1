"""The conference page as the control room, in headless Chromium with real callers.

Against ``python -m mrf serve``, baresip (account sip:alice@127.0.0.1, SDES-SRTP)
and ``mrf ue``: the invite panel shows the dial-in URIs with the server's real
SIP port and transport; baresip dials in and its row goes live; eve (not on the
list) is refused and shows under "Refused join attempts", and one click
authorizes her; Mute all mutes alice, Unmute all unmutes her; Lock makes the
focus refuse bob with 403 and a Warning saying the conference is locked, Unlock
lets him in; Hang up ends alice's call (baresip gets the BYE) while she stays on
the authorized list.  Every state is checked by axe-core and screenshotted at
desktop and phone sizes (:mod:`.page_checks`).
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from ..interop.harness import Artifacts, MrfServer, UeJoin, wait_for
from ..interop.peers import Baresip
from .page_checks import check_page
from .test_browser import ALICE, BOB, CHROMIUM_FLAGS, _admin_password, _web_url, server  # noqa: F401

pytestmark = pytest.mark.interop

EVE = "sip:eve@127.0.0.1"


def _ue(mrf: MrfServer, tmp_path: Path, name: str, identity: str, *extra: str) -> UeJoin:
    directory = tmp_path / f"ue-{name}"
    directory.mkdir(parents=True, exist_ok=True)
    return UeJoin(Artifacts(directory), mrf, "room", identity,
                  "--audio", "--duration", "30", *extra)  # fmt: skip


def _outcome(ue: UeJoin) -> dict[str, object]:
    found = wait_for(lambda: ue.events("refused") or ue.events("joined"), 15)
    assert found, f"mrf ue neither joined nor was refused: {ue.err.read_text()[-2000:]}"
    return found[0]


def test_the_control_room(server: MrfServer, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    shots = tmp_path / "screenshots"
    base = _web_url(server)
    sip = tomllib.loads(server.config.read_text())["sip"]
    password = _admin_password(server)
    ua: Baresip | None = None
    joiners: list[UeJoin] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS, timeout=30_000
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{base}/login")
            page.get_by_label("Account").fill("admin")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_label("Name").fill("room")
            page.get_by_role("button", name="Create").click()
            expect(page.get_by_role("status")).to_contain_text("Conference created")
            for uri in (ALICE, BOB):
                page.get_by_label("SIP URI", exact=True).fill(uri)
                page.get_by_role("button", name="Add", exact=True).click()
                expect(page.get_by_role("status")).to_contain_text(f"Authorized {uri}")
            # the invite panel: the real port and transport
            expect(page.locator("#uri")).to_have_value(f"sip:room@127.0.0.1:{sip['port']}")
            expect(page.locator("#tls-uri")).to_have_value(f"sips:room@127.0.0.1:{sip['tls_port']}")
            text = page.locator("#invite-text").input_value()
            assert "SDES-SRTP" in text and "DTLS-SRTP" in text and "MIKEY-TICKET" in text
            assert "the SIP account you were invited as" in text
            expect(page.locator("#roster")).to_have_attribute("data-live", "1")

            ua = Baresip(Artifacts(tmp_path / "peers"))
            assert ua.command("dial", server.request_uri("room")).get("ok")
            established = ua.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 10)
            assert established and established["type"] == "CALL_ESTABLISHED", ua.events
            row = page.locator(f'#roster tbody tr[data-uri="{ALICE}"]')
            expect(row).to_contain_text("connected")
            expect(row).to_contain_text("audio · sdes")
            check_page(page, shots, "1-live")

            # a refused attempt shows, and one click authorizes eve
            eve = _ue(server, tmp_path, "eve", EVE)
            joiners.append(eve)
            refused = _outcome(eve)
            assert refused["event"] == "refused" and refused["status"] == 403, refused
            page.reload()
            refusals = page.locator("ul.refusals")
            expect(refusals).to_contain_text(
                f"{EVE} refused: the identity in From is not on the authorized list"
            )
            check_page(page, shots, "2-refused")
            page.get_by_role("button", name=f"Authorize {EVE}").click()
            expect(page.get_by_role("status")).to_contain_text(f"Authorized {EVE}")
            expect(page.get_by_role("button", name=f"Authorize {EVE}")).to_have_count(0)

            # mute all, unmute all
            expect(page.locator("#roster")).to_have_attribute("data-live", "1")
            page.get_by_role("button", name="Mute all", exact=True).click()
            expect(row).to_contain_text("muted")
            expect(page.get_by_role("button", name=f"Unmute {ALICE}")).to_be_visible()
            page.get_by_role("button", name="Unmute all").click()
            expect(page.get_by_role("button", name=f"Mute {ALICE}", exact=True)).to_be_visible()
            expect(row).not_to_contain_text("muted")

            # lock: bob is refused with a Warning that says so; unlock lets him in
            page.get_by_role("button", name="Lock", exact=True).click()
            expect(page.get_by_role("status")).to_contain_text("Locked")
            expect(page.locator("#lock-state")).to_contain_text("Locked")
            bob = _ue(server, tmp_path, "bob", BOB)
            joiners.append(bob)
            locked = _outcome(bob)
            assert locked["event"] == "refused" and locked["status"] == 403, locked
            assert "the conference is locked" in str(locked.get("warning")), locked
            assert established["type"] == "CALL_ESTABLISHED" and not ua.wait_event(
                {"CALL_CLOSED"}, 0.5
            ), "the lock ends no call"
            check_page(page, shots, "3-locked")
            page.get_by_role("button", name="Unlock").click()
            expect(page.get_by_role("status")).to_contain_text("Unlocked")
            floor_args = ("--transport", "tcp", "--bfcp", "--request-floor", "--msrp")
            bob_again = _ue(server, tmp_path, "bob2", BOB, *floor_args, "--say", "hello from bob")
            joiners.append(bob_again)
            assert _outcome(bob_again)["event"] == "joined"
            expect(page.locator(f'#roster tbody tr[data-uri="{BOB}"]')).to_contain_text("connected")

            # floors: bob holds floor 1, eve waits; the owner denies her request
            floors = page.locator("#floors")
            expect(floors).to_contain_text(f"Floor 1: held by {BOB}")
            eve_again = _ue(server, tmp_path, "eve2", EVE, *floor_args)
            joiners.append(eve_again)
            assert _outcome(eve_again)["event"] == "joined"
            expect(floors).to_contain_text(f"{EVE} queued")
            check_page(page, shots, "3b-floor-queue")
            page.get_by_role("button", name=f"Deny floor 1 to {EVE}").click()
            expect(floors).not_to_contain_text(f"{EVE} queued")
            denied = wait_for(lambda: [e for e in eve_again.events("floor")
                                       if e.get("status") == "denied"], 10)  # fmt: skip
            assert denied, eve_again.events("floor")

            # the chat pane: bob's message live, and the owner posts as the conference
            chat = page.locator("#chat")
            expect(chat).to_contain_text(f"{BOB}: hello from bob")
            page.get_by_label("Message to the room").fill("welcome, all")
            page.get_by_role("button", name="Send", exact=True).click()
            expect(page.get_by_role("status")).to_contain_text("Sent to the room")
            conference_uri = "sip:room@127.0.0.1"
            got = wait_for(lambda: [e for e in eve_again.events("chat")
                                    if e.get("text") == "welcome, all"], 10)  # fmt: skip
            assert got and conference_uri in str(got[0].get("from")), eve_again.events("chat")
            expect(chat).to_contain_text(f"{conference_uri}: welcome, all")
            check_page(page, shots, "3c-chat")

            # Hang up: BYE, but alice stays authorized
            page.get_by_role("button", name=f"Hang up {ALICE}").click()
            closed = ua.wait_event({"CALL_CLOSED"}, 10)
            assert closed is not None, f"baresip got no BYE: {ua.events}"
            expect(row).to_have_count(0)
            expect(page.locator("table.participants")).to_contain_text(ALICE)
            history = page.locator("#roster .history")
            expect(history).to_contain_text(f"{ALICE} · left · hung up from the web")
            check_page(page, shots, "4-hung-up")
            page.get_by_role("button", name=f"Dismiss the call of {ALICE}").first.click()
            expect(history).not_to_contain_text(f"{ALICE} · left")
        finally:
            browser.close()
            if ua is not None:
                ua.close()
            for joiner in joiners:
                joiner.finish()
