"""The conference page as the control room, in headless Chromium with real callers.

Against ``python -m mrf serve``, baresip (account sip:alice@127.0.0.1, SDES-SRTP)
and ``mrf ue``: the invite panel shows the dial-in URIs with the server's real
SIP port and transport; baresip dials in and its row goes live; eve (not on the
list) is refused and shows under "Refused join attempts", and one click
authorizes her; Mute all mutes alice, Unmute all unmutes her; Lock makes the
focus refuse bob with 403 and a Warning saying the conference is locked, Unlock
lets him in; Hang up ends alice's call (baresip gets the BYE) while she stays on
the authorized list.  A dial-out to a callee that rings and never answers
shows as ringing, Cancel ends it (CANCEL, 487) and it moves to the history.
Every state is checked by axe-core and screenshotted at desktop and phone
sizes (:mod:`.page_checks`).
"""

from __future__ import annotations

import secrets
import shutil
import socket
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from focus.sip.message import SipRequest, SipResponse, make_response, parse_message

from ..interop.harness import Artifacts, MrfServer, UeJoin, tail, wait_for
from ..interop.peers import Baresip
from .page_checks import check_page
from .test_browser import ALICE, BOB, CHROMIUM_FLAGS, _admin_password, _web_url, server  # noqa: F401

pytestmark = pytest.mark.interop

EVE = "sip:eve@127.0.0.1"
CAROL = "sip:carol@127.0.0.1"  # rings and never answers


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


class RingingCallee:
    """A UDP SIP responder that answers an INVITE with 180 only; CANCEL gets 200 and 487."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.methods: list[str] = []
        self._invites: dict[str, tuple[SipRequest, str]] = {}  # Call-ID: (INVITE, To tag)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            request = parse_message(data)
            if not isinstance(request, SipRequest):
                continue
            self.methods.append(request.method)
            for response in self._answer(request):
                self.sock.sendto(bytes(response), addr)

    def _answer(self, request: SipRequest) -> list[SipResponse]:
        if request.method == "ACK":
            return []
        if request.method == "INVITE":
            _, tag = self._invites.setdefault(request.call_id, (request, secrets.token_hex(4)))
            return [make_response(request, 180, "Ringing", to_tag=tag)]
        if request.method == "CANCEL" and request.call_id in self._invites:
            invite, tag = self._invites[request.call_id]  # RFC 3261 §9.2: 487 the INVITE
            return [make_response(request, 200), make_response(invite, 487, to_tag=tag)]
        return [make_response(request, 200)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def callee() -> Iterator[RingingCallee]:
    ringing = RingingCallee()
    yield ringing
    ringing.close()


@pytest.fixture
def dialling_server(tmp_path: Path, callee: RingingCallee) -> Iterator[MrfServer]:
    """``mrf serve`` whose dial-outs go to :class:`RingingCallee` (its outbound proxy)."""
    running = MrfServer(tmp_path / "server")
    text = running.config.read_text()
    # the page's checks take longer than the default 30 s ring timeout
    proxy = f'outbound_proxy = "sip:127.0.0.1:{callee.port}"\nring_timeout = 600\n'
    running.config.write_text(text.replace("[sip]\n", f"[sip]\n{proxy}", 1))
    running.start()
    yield running
    running.stop()
    assert "Traceback (most recent call last)" not in running.log_text(), tail(running.log, 80)


def test_a_ringing_dial_out_is_cancelled_from_the_page(
    dialling_server: MrfServer, callee: RingingCallee, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    shots = tmp_path / "screenshots"
    base = _web_url(dialling_server)
    password = _admin_password(dialling_server)
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
            page.get_by_label("SIP URI", exact=True).fill(CAROL)
            page.get_by_role("button", name="Add", exact=True).click()
            expect(page.get_by_role("status")).to_contain_text(f"Authorized {CAROL}")
            page.get_by_role("button", name=f"Call {CAROL}").click()
            expect(page.get_by_role("status")).to_contain_text(f"Calling {CAROL}")
            expect(page.locator("#roster")).to_have_attribute("data-live", "1")
            row = page.locator(f'#roster tbody tr[data-uri="{CAROL}"]')
            expect(row).to_contain_text("ringing")
            assert "INVITE" in callee.methods and "CANCEL" not in callee.methods
            check_page(page, shots, "5-ringing")

            page.get_by_role("button", name=f"Cancel the call to {CAROL}").click()
            assert wait_for(lambda: "CANCEL" in callee.methods, 10), callee.methods
            expect(row).to_have_count(0)
            history = page.locator("#roster .history")
            expect(history).to_contain_text(f"{CAROL} · failed · 487")
            expect(page.locator("table.participants")).to_contain_text(CAROL)
            check_page(page, shots, "6-cancelled")
            page.get_by_role("button", name=f"Dismiss the call of {CAROL}").first.click()
            expect(history).not_to_contain_text(f"{CAROL} · failed")
        finally:
            browser.close()
