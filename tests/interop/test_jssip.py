"""A WebRTC SIP client we did not write (JsSIP 3.13) in Chromium dials in over ``/sip``.

The real server (``mrf serve``), Debian's headless ``chromium`` driven by
Playwright with a fake microphone (a 440 Hz WAV), and JsSIP from npm
(``tests/peers/jssip``: installed and bundled with esbuild by this test's
setup when missing, never committed).  An invite link for carol is opened
first (it binds the browser's web session); a page under the server's own
origin (served by Playwright's router, so the WebSocket carries the session
cookie and a same-origin ``Origin``) runs JsSIP, which calls the conference
with ``From: mallory`` over ``ws://…/sip`` with ICE + DTLS-SRTP (Chromium's
offer: ``UDP/TLS/RTP/SAVPF``, ``rtcp-mux``, Opus and PCMU).

Asserted: the call is confirmed; the roster shows carol (the session's
identity, not mallory) with ``key_mode: dtls`` and SRTP packets arriving from
the browser; the browser's own statistics show RTP received from the focus
(so each side decrypted the other's DTLS-keyed SRTP); JsSIP's hang-up empties
the roster.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
import tomllib
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Conference, MrfServer, tail, wait_for

pytestmark = pytest.mark.interop

JSSIP_DIR = Path(__file__).resolve().parents[1] / "peers" / "jssip"
BUNDLE = JSSIP_DIR / "jssip.bundle.js"
CAROL = "sip:carol@127.0.0.1"
MALLORY = "sip:mallory@127.0.0.1"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    # a page fulfilled by Playwright has no address space: without this, Local Network
    # Access treats it as public and blocks its WebSocket to 127.0.0.1
    "--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks",
]  # fmt: skip

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>JsSIP</title>
<script src="/test/jssip.js"></script></head><body><script>
window.log = [];
window.state = "starting";
const note = (what) => { window.log.push(what); };
const socket = new JsSIP.WebSocketInterface(SOCKET_URL);
const ua = new JsSIP.UA({ sockets: [socket], uri: FROM_URI, register: false,
                          session_timers: false });
ua.on("connected", () => {
  note("connected");
  window.session = ua.call(CONFERENCE, {
    mediaConstraints: { audio: true, video: false },
    pcConfig: { iceServers: [] },
    eventHandlers: {
      confirmed: () => { window.state = "confirmed"; note("confirmed"); },
      failed: (e) => { window.state = "failed"; note("failed " + e.cause); },
      ended: (e) => { window.state = "ended"; note("ended " + e.cause); },
    },
  });
  window.session.on("peerconnection:setremotedescriptionfailed",
                    (e) => note("setRemoteDescription failed: " + e));
  window.session.on("sdp", (e) => { if (e.originator === "remote") note("answer " + e.sdp); });
});
ua.on("disconnected", () => note("disconnected"));
ua.start();
window.inboundPackets = async () => {
  const stats = await window.session.connection.getStats();
  let packets = 0;
  stats.forEach((r) => { if (r.type === "inbound-rtp") packets += r.packetsReceived || 0; });
  return packets;
};
</script></body></html>"""


def _tone(path: Path, frequency: float = 440.0, seconds: float = 10.0) -> Path:
    rate = 48000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (
            int(12000 * math.sin(2 * math.pi * frequency * n / rate))
            for n in range(int(rate * seconds))
        )
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


@pytest.fixture(scope="module")
def jssip_bundle() -> Path:
    """JsSIP from npm, bundled for the browser (once; into the ignored peer folder)."""
    if BUNDLE.exists():
        return BUNDLE
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm not found: install the Debian package npm", pytrace=False)
    for argv in ([npm, "install", "--no-audit", "--no-fund"], [npm, "run", "-s", "bundle"]):
        done = subprocess.run(
            argv, cwd=JSSIP_DIR, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            pytest.fail(
                f"{' '.join(argv[1:])} in tests/peers/jssip failed (needs the npm registry; "
                f"`make peers` runs it before the network namespace):\n{done.stderr[-2000:]}",
                pytrace=False,
            )
    return BUNDLE


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MrfServer]:
    running = MrfServer(tmp_path / "server")
    running.create_conference(Conference("webrtc", (CAROL,)))
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


def test_jssip_in_chromium_joins_over_websocket_with_dtls_srtp(
    server: MrfServer, jssip_bundle: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import Route, sync_playwright
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    wait_for(lambda: "first admin account" in server.log_text(), 10)
    token = server.cli("admin", "token", "admin").stdout.strip()
    invite = _api(server, token, "POST", "/api/conferences/1/invites", {"uri": CAROL})
    base = _web(server)
    page_html = (
        PAGE.replace("SOCKET_URL", json.dumps(base.replace("http", "ws", 1) + "/sip"))
        .replace("FROM_URI", json.dumps(MALLORY))
        .replace("CONFERENCE", json.dumps("sip:webrtc@127.0.0.1"))
    )
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
            assert CAROL in page.content(), "the join page does not name the invite's identity"

            def fulfil(route: Route) -> None:
                if route.request.url.endswith("/test/jssip.js"):
                    route.fulfill(path=jssip_bundle, content_type="text/javascript")
                else:
                    route.fulfill(body=page_html, content_type="text/html")

            page.route(f"{base}/test/**", fulfil)
            page.goto(f"{base}/test/jssip.html")
            try:
                page.wait_for_function("['confirmed', 'failed', 'ended'].includes(window.state)")
            except PlaywrightTimeout:
                pytest.fail(
                    f"JsSIP's call did not finish: {page.evaluate('window.log')}\n"
                    f"console: {console[-20:]}\n{tail(server.log, 60)}", pytrace=False,
                )  # fmt: skip
            log = page.evaluate("window.log")
            (tmp_path / "jssip.log").write_text("\n".join([*log, *console]))
            assert page.evaluate("window.state") == "confirmed", (log, tail(server.log, 60))

            entry = wait_for(lambda: _carol(server, token), 5.0)
            assert entry, f"carol is not in the roster:\n{tail(server.log, 40)}"
            assert entry["uri"] == CAROL and entry["state"] == "connected", entry
            media = entry["media"]
            assert [m["key_mode"] for m in media] == ["dtls"], media
            moving = wait_for(
                lambda: _carol(server, token)["media"][0]["packets_in"] > 50,
                10.0,
            )
            assert moving, f"no SRTP from the browser reached the focus: {_carol(server, token)}"
            page.wait_for_function("window.inboundPackets().then((n) => n > 50)", polling=500)

            page.evaluate("window.session.terminate()")
            assert wait_for(lambda: not _carol(server, token), 10.0), _carol(server, token)
        finally:
            browser.close()
