"""Our join page in Chromium: an invite link, the microphone, DTLS-SRTP over /sip, leave.

The real server (``mrf serve``) and Debian's headless ``chromium`` (Playwright)
with a fake microphone playing a 440 Hz WAV.  The invite link for carol opens
the join page (served by the server: ``web/static/join.js``, no library);
"Join with microphone" calls the conference over ``ws://…/sip`` with the
browser's own offer (ICE, DTLS-SRTP, rtcp-mux, Opus).

Asserted: the page says it is in the conference and lists carol from the
conference event package (NOTIFY over the same WebSocket); the roster (REST)
shows carol with ``key_mode: dtls`` and SRTP arriving from the browser and
leaving for it; the microphone meter moves with the tone and drops to silence
when muted; "Leave" sends BYE and the roster empties.
"""

from __future__ import annotations

import json
import shutil
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Conference, MrfServer, tail, wait_for
from .test_jssip import CHROMIUM_FLAGS, _tone

pytestmark = pytest.mark.interop

CAROL = "sip:carol@127.0.0.1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MrfServer]:
    running = MrfServer(tmp_path / "server")
    running.create_conference(Conference("webjoin", (CAROL,)))
    running.start()
    yield running
    running.stop()
    assert "Traceback (most recent call last)" not in running.log_text(), tail(running.log, 80)


def _web(server: MrfServer) -> str:
    return f"http://127.0.0.1:{tomllib.loads(server.config.read_text())['web']['port']}"


def _api(server: MrfServer, token: str, method: str, path: str, body: object = None) -> Any:
    request = urllib.request.Request(
        _web(server) + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _carol(server: MrfServer, token: str) -> dict[str, Any]:
    roster = _api(server, token, "GET", "/api/conferences/1/roster")
    found = [  # a call that is up, not the history of ended ones
        p for p in roster["participants"] if p["uri"] == CAROL and p.get("state") != "left"
    ]
    return found[0] if found else {}


def _level(page: Any, meter: str) -> float:
    """A meter's value (the page's CSP forbids eval: Playwright's wait_for_function)."""
    return float(page.evaluate(f"document.getElementById({meter!r}).value"))


def test_the_join_page_calls_with_the_microphone_and_leaves(
    server: MrfServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    wait_for(lambda: "first admin account" in server.log_text(), 10)
    token = server.cli("admin", "token", "admin").stdout.strip()
    invite = _api(server, token, "POST", "/api/conferences/1/invites", {"uri": CAROL})
    tone = _tone(tmp_path / "tone.wav")
    shots = tmp_path / "screenshots"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, timeout=30_000,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={tone}",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        page = browser.new_page()
        page.set_default_timeout(20_000)
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text[:300]))
        try:
            page.goto(str(invite["url"]))
            expect(page.locator("#join-identity")).to_have_text(CAROL)
            page.get_by_role("button", name="Join with microphone").click()
            join = page.locator("#join")
            try:
                expect(join).to_have_attribute("data-state", "in-call")
            except AssertionError:
                pytest.fail(
                    f"not in the call: {page.locator('#join-status').inner_text()}\n"
                    f"console: {console[-20:]}\n{tail(server.log, 40)}", pytrace=False,
                )  # fmt: skip
            expect(page.locator(f'#participants li[data-uri="{CAROL}"]')).to_contain_text(
                "connected"
            )
            page.screenshot(path=shots / "in-call.png", full_page=True)

            entry = wait_for(lambda: _carol(server, token), 5.0)
            # the audio is DTLS-SRTP; the page's chat line (TCP/WS/MSRP on loopback) is listed too
            modes = [(m.get("type", "audio"), m["key_mode"]) for m in entry["media"]]
            assert entry and modes[0][1] == "dtls" and ("msrp", "none") in modes[1:], entry
            moving = wait_for(
                lambda: (lambda m: m["packets_in"] > 50 and m["packets_out"] > 50)(
                    _carol(server, token)["media"][0]
                ),
                10.0,
            )
            assert moving, f"SRTP does not flow both ways: {_carol(server, token)}"
            assert wait_for(lambda: _level(page, "local-level") > 0.05, 5.0), "the mic meter stays"

            page.get_by_role("button", name="Mute").click()
            expect(page.get_by_role("button", name="Unmute")).to_have_attribute(
                "aria-pressed", "true"
            )
            assert wait_for(lambda: _level(page, "local-level") < 0.01, 5.0), "muted, still heard"

            page.get_by_role("button", name="Leave").click()
            expect(join).to_have_attribute("data-state", "left")
            expect(page.locator("#join-status")).to_have_text("You left the conference")
            assert wait_for(lambda: not _carol(server, token), 10.0), _carol(server, token)
        finally:
            browser.close()


def test_revoking_the_invite_ends_the_pages_call(server: MrfServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    wait_for(lambda: "first admin account" in server.log_text(), 10)
    token = server.cli("admin", "token", "admin").stdout.strip()
    invite = _api(server, token, "POST", "/api/conferences/1/invites", {"uri": CAROL})
    tone = _tone(tmp_path / "tone.wav")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, timeout=30_000,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={tone}"],
        )  # fmt: skip
        page = browser.new_page()
        page.set_default_timeout(20_000)
        try:
            page.goto(str(invite["url"]))
            page.get_by_role("button", name="Join with microphone").click()
            expect(page.locator("#join")).to_have_attribute("data-state", "in-call")
            assert wait_for(lambda: _carol(server, token), 5.0)
            revoked = _api(server, token, "DELETE", f"/api/conferences/1/invites/{invite['id']}")
            assert revoked["disconnected"] == 1, revoked
            expect(page.locator("#join-status")).to_have_text("The conference ended your call")
            assert wait_for(lambda: not _carol(server, token), 5.0)
            page.get_by_role("button", name="Join with microphone").click()  # the session lost it
            expect(page.locator("#join")).to_have_attribute("data-state", "ended")
            expect(page.locator("#join-status")).to_contain_text("connection to the server failed")
        finally:
            browser.close()
