"""A browser on our join page and a baresip hear each other's tones through the mixer.

Headless Chromium (Debian ``chromium``, Playwright) with a fake microphone
playing 1100 Hz joins from carol's invite link on the join page (DTLS-SRTP
over ``/sip``); baresip as alice dials in over UDP with SDES and a 400 Hz
sine (``ausine``), recording what it decodes (``sndfile``).  The browser's
hearing is measured in the page: an ``AnalyserNode`` on the remote track's
stream (``getFloatFrequencyData``), the 400 Hz bin against every bin away
from it.  Each side's tone stands ≥ 20 dB above the other frequencies; both
streams keep their own keys (alice's SDES, carol's DTLS exporter).
"""

from __future__ import annotations

import re
import shutil
import struct
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pylibsrtp
import pytest

from .conftest import finish_server
from .harness import (
    Artifacts,
    BackgroundProcess,
    Conference,
    MrfServer,
    require_peer,
    tail,
    wait_for,
)
from .test_join_page import _api, _carol
from .test_jssip import CHROMIUM_FLAGS, _tone
from .test_mixing import (
    ISOLATION_DB,
    PEOPLE,
    _dial,
    _focus_key,
    _hang_up,
    _levels,
    _participant,
    _recording,
)

pytestmark = pytest.mark.interop

ALICE, CAROL = "sip:alice@127.0.0.1", "sip:carol@127.0.0.1"

# dB at the tone's bins, and the loudest bin more than 150 Hz from it (DC excluded)
SPECTRUM = """async (tone) => {
  const audio = new AudioContext();
  const analyser = audio.createAnalyser();
  analyser.fftSize = 8192;
  analyser.smoothingTimeConstant = 0.5;
  audio.createMediaStreamSource(document.getElementById("remote-audio").srcObject)
    .connect(analyser);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  const hz = audio.sampleRate / analyser.fftSize;
  let at = -Infinity, other = -Infinity;
  bins.forEach((db, i) => {
    const f = i * hz;
    if (Math.abs(f - tone) < 20) at = Math.max(at, db);
    else if (Math.abs(f - tone) > 150 && f > 60) other = Math.max(other, db);
  });
  await audio.close();
  return [at, other];
}"""


@pytest.fixture
def server(artifacts: Artifacts) -> Iterator[MrfServer]:
    """``mrf serve`` with the DTLS-SRTP key log on (a test-only setting)."""
    running = MrfServer(artifacts.directory / "server")
    artifacts.logs["server stderr"] = running.log
    keylog = running.workdir / "srtp-keys.log"
    running.config.write_text(
        running.config.read_text() + f'[tls]\nsrtp_keylog_file = "{keylog}"\n'
    )
    running.create_conference(Conference("conf1", (ALICE, CAROL)))
    running.start()
    yield running
    finish_server(running)


def _keylog(server: MrfServer) -> list[tuple[int, str, bytes, bytes]]:
    path = server.workdir / "srtp-keys.log"
    lines = path.read_text().splitlines() if path.exists() else []
    rows = [line.split() for line in lines if line.startswith("DTLS-SRTP ")]
    return [(int(r[1]), r[2], bytes.fromhex(r[3]), bytes.fromhex(r[4])) for r in rows]


def _rtp_by_source_port(path: Path) -> dict[int, list[bytes]]:
    """SRTP packets (RTCP left out, RFC 5761 §4) of a pcap, by UDP source port."""
    data = path.read_bytes()
    linktype = struct.unpack_from("<I", data, 20)[0]
    link_header = {1: 14, 113: 16, 276: 20}[linktype]
    offset, found = 24, defaultdict(list)
    while offset + 16 <= len(data):
        captured = struct.unpack_from("<I", data, offset + 8)[0]
        ip = data[offset + 16 + link_header : offset + 16 + captured]
        offset += 16 + captured
        header = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        source = struct.unpack_from("!H", ip, header)[0]
        payload = ip[header + 8 :]
        if len(payload) > 12 and payload[0] >> 6 == 2 and not 192 <= payload[1] <= 223:
            found[source].append(payload)
    return found


_SRTP_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AEAD_AES_256_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}


def _opened(packets: list[bytes], suite: str, key: bytes) -> int:
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=_SRTP_PROFILES[suite]
    )
    session, ok = pylibsrtp.Session(policy=policy), 0
    for packet in packets:
        try:
            session.unprotect(packet)
            ok += 1
        except pylibsrtp.Error:
            pass
    return ok


def test_browser_and_baresip_hear_each_others_tone(
    server: MrfServer, artifacts: Artifacts, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    tshark = require_peer("tshark")
    wait_for(lambda: "first admin account" in server.log_text(), 10)
    token = server.cli("admin", "token", "admin").stdout.strip()
    invite: dict[str, Any] = _api(server, token, "POST", "/api/conferences/1/invites",
                                  {"uri": CAROL})  # fmt: skip
    tone = _tone(tmp_path / "carol.wav", PEOPLE["carol"], seconds=30.0)
    alice = _participant(artifacts, "alice")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, timeout=30_000,
                args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={tone}",
                      "--autoplay-policy=no-user-gesture-required"],
            )  # fmt: skip
            page = browser.new_page()
            page.set_default_timeout(20_000)
            try:
                page.goto(str(invite["url"]))
                page.get_by_role("button", name="Join with microphone").click()
                expect(page.locator("#join")).to_have_attribute("data-state", "in-call")
                _dial(alice, server)
                listed = page.locator(f'#participants li[data-uri="{ALICE}"]')
                expect(listed).to_be_visible(timeout=15_000)  # a partial NOTIFY, rate-capped
                expect(page.locator(f'#participants li[data-uri="{CAROL}"]')).to_be_visible()
                [(browser_port, suite, _, to_browser_key)] = _keylog(server)
                answer = alice.log_text()[alice.log_text().find("SIP/2.0 200 OK") :]
                alice_port = int(re.findall(r"m=audio (\d+) RTP/SAVP", answer)[0])
                capture = artifacts.directory / "from-focus.pcap"
                argv = [tshark, "-i", "lo", "-f",
                        f"udp src port {browser_port} or udp src port {alice_port}",
                        "-a", "duration:2", "-w", str(capture), "-F", "pcap", "-q"]  # fmt: skip
                sniffer = BackgroundProcess(argv, artifacts.path("tshark.log"))
                heard, other = page.evaluate(SPECTRUM, PEOPLE["alice"])
                sniffer.wait(15)
                sniffer.stop()
                entry = _carol(server, token)
                time.sleep(1.0)
                page.get_by_role("button", name="Leave").click()
                expect(page.locator("#join")).to_have_attribute("data-state", "left")
            finally:
                browser.close()
        _hang_up(alice)
    finally:
        alice.close()
    # the audio is DTLS-SRTP; the join page's chat line (TCP/WS/MSRP on loopback) follows it
    modes = [(m.get("type", "audio"), m["key_mode"]) for m in entry["media"]]
    assert modes[0][1] == "dtls" and all(kind == "msrp" for kind, _ in modes[1:]), entry
    assert heard >= other + ISOLATION_DB, (
        f"the browser hears alice's 400 Hz at {heard:.1f} dB, other bins up to {other:.1f} dB"
    )
    log = alice.log_text()
    assert "SRTP is Enabled" in log and "failed to decrypt" not in log, tail(alice.process.log)
    audio, rate = _recording(alice)
    levels = _levels(audio, rate)
    assert levels["carol"] >= levels["alice"] + ISOLATION_DB, (
        f"alice hears the browser at {levels['carol']:.1f} dB, herself at {levels['alice']:.1f}"
    )
    spectrum_note = {"browser": (round(heard, 1), round(other, 1)), "alice": levels}
    (artifacts.directory / "levels.txt").write_text(f"{spectrum_note}\n")
    for row in server.media_summaries():
        assert int(row["auth_failures"]) == 0, row

    alice_suite, alice_key = _focus_key(alice, server)
    packets = _rtp_by_source_port(capture)
    to_browser, to_alice = packets[browser_port], packets[alice_port]
    assert len(to_browser) > 50 and len(to_alice) > 50, {p: len(v) for p, v in packets.items()}
    own = _opened(to_browser, suite, to_browser_key), _opened(to_alice, alice_suite, alice_key)
    crossed = _opened(to_browser, alice_suite, alice_key), _opened(to_alice, suite, to_browser_key)
    (artifacts.directory / "keys.txt").write_text(
        f"to browser: {len(to_browser)} packets, {suite}; to alice: {len(to_alice)}, "
        f"{alice_suite}; opened with own keys {own}, with the other's {crossed}\n"
    )
    assert own == (len(to_browser), len(to_alice)), (own, len(to_browser), len(to_alice))
    assert crossed == (0, 0), crossed
