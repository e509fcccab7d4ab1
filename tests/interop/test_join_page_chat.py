"""Chat from our join page in Chromium with an ``mrf ue --msrp`` participant (RFC 7977).

The real server (``mrf serve``), Debian's headless ``chromium`` (Playwright)
on carol's invite link, and ``mrf ue join --msrp`` as alice over SIP/UDP and
MSRP over TLS.  The page's INVITE (over ``ws://…/sip``) carries a
``TCP/WS/MSRP`` line; once in the call it opens ``/msrp``.  Asserted: what
carol types reaches alice as a chat from carol; what alice says appears in
the page's chat log under alice's URI.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Artifacts, Conference, MrfServer, UeJoin, tail, wait_for
from .test_join_page import _api
from .test_jssip import CHROMIUM_FLAGS, _tone

pytestmark = pytest.mark.interop

CAROL = "sip:carol@127.0.0.1"
ALICE = "sip:alice@127.0.0.1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MrfServer]:
    running = MrfServer(tmp_path / "server")
    running.create_conference(Conference("chat", (CAROL, ALICE)))
    running.start()
    yield running
    running.stop()
    assert "Traceback (most recent call last)" not in running.log_text(), tail(running.log, 80)


def test_chat_both_ways_between_the_page_and_an_mrf_ue(
    server: MrfServer, artifacts: Artifacts, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    wait_for(lambda: "first admin account" in server.log_text(), 10)
    token = server.cli("admin", "token", "admin").stdout.strip()
    invite = _api(server, token, "POST", "/api/conferences/1/invites", {"uri": CAROL})
    alice = UeJoin(artifacts, server, "chat", ALICE, "--msrp", "--duration", "60")
    assert wait_for(lambda: alice.events("joined"), 20), alice.events()
    tone = _tone(tmp_path / "tone.wav")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, timeout=30_000,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={tone}"],
        )  # fmt: skip
        page = browser.new_page()
        page.set_default_timeout(20_000)
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text[:300]))
        try:
            page.goto(str(invite["url"]))
            page.get_by_role("button", name="Join with microphone").click()
            expect(page.locator("#join")).to_have_attribute("data-state", "in-call")
            send = page.get_by_role("button", name="Send")
            try:
                expect(send).to_be_enabled()
            except AssertionError:
                pytest.fail(f"no chat: {console[-20:]}\n{tail(server.log, 40)}", pytrace=False)
            time.sleep(0.5)  # the bodiless SEND binds the session first
            page.get_by_label("Message").fill("Grüße from the browser ☃")
            send.click()
            chats = wait_for(
                lambda: [e for e in alice.events("chat") if "browser" in str(e["text"])], 10
            )
            assert chats, f"{alice.events()}\n{tail(server.log, 40)}"
            assert chats[0]["text"] == "Grüße from the browser ☃" and chats[0]["from"] == CAROL
            alice.command("say hello page, from alice")
            line = page.locator("#chat-log li", has_text="hello page, from alice")
            expect(line).to_contain_text(ALICE)
        finally:
            browser.close()
            alice.finish()
