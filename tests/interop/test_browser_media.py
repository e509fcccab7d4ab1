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

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerFactory
from .harness import Artifacts, Conference, tail, wait_for
from .test_join_page import _api, _carol
from .test_jssip import CHROMIUM_FLAGS, _tone
from .test_mixing import ISOLATION_DB, PEOPLE, _dial, _hang_up, _levels, _participant, _recording

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


def test_browser_and_baresip_hear_each_others_tone(
    mrf_server: ServerFactory, artifacts: Artifacts, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium not found: install the Debian package chromium", pytrace=False)
    server = mrf_server([Conference("conf1", (ALICE, CAROL))])
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
                time.sleep(2.0)  # speaker selection and jitter buffers settle
                heard, other = page.evaluate(SPECTRUM, PEOPLE["alice"])
                entry = _carol(server, token)
                time.sleep(1.0)
                page.get_by_role("button", name="Leave").click()
                expect(page.locator("#join")).to_have_attribute("data-state", "left")
            finally:
                browser.close()
        _hang_up(alice)
    finally:
        alice.close()
    assert [m["key_mode"] for m in entry["media"]] == ["dtls"], entry
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
