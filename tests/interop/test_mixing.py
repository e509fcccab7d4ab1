"""Audio conferencing with real baresip participants (SDES-SRTP mandatory).

Each baresip sends a sine of its own frequency (``ausine``) and records what
it decodes (``sndfile`` writes ``dump-<time>-dec.wav`` into ``snd_path``).
The recordings are judged with an FFT: every participant hears the other
two tones and not its own (TS 33.328 G.1 mixing through per-participant keys).

ICE and DTLS-SRTP: the same tone test with alice behind baresip's ``ice``
module (RFC 8445 connectivity checks against the focus's aioice agent, SDES
keys), bob keyed by ``dtls_srtp`` (RFC 5763/5764: UDP/TLS/RTP/SAVPF, the keys
come from the handshake) and carol on plain SDES; each with its own keys.

Key isolation: tshark captures the SRTP the focus sends to B; the focus's
outbound keys for A and B are read from the 200 OK answers in the baresips'
SIP traces; with pylibsrtp, A's key unprotects none of B's packets and B's
key all of them.
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pylibsrtp
import pytest

from .conftest import ServerFactory
from .harness import (
    Artifacts,
    BackgroundProcess,
    Conference,
    MrfServer,
    network_isolated,
    require_peer,
    tail,
)
from .peers import Baresip

pytestmark = pytest.mark.interop

PEOPLE = {"alice": 400.0, "bob": 700.0, "carol": 1100.0}  # ausine frequencies, Hz
ISOLATION_DB = 20.0
MAX_GAP = 0.060


def _participant(
    artifacts: Artifacts, name: str, *, mediaenc: str = "srtp-mand", ice: bool = False
) -> Baresip:
    config = {
        "audio_source": f"ausine,{int(PEOPLE[name])}",
        "snd_path": str(artifacts.directory / f"baresip-{name}"),
        "module+": "sndfile.so",
    }
    if mediaenc == "dtls_srtp":
        config["module++"] = "dtls_srtp.so"
    if ice:
        config["module+++"] = "ice.so"
    return Baresip(
        artifacts,
        name=f"baresip-{name}",
        account=(
            f"<sip:{name}@127.0.0.1>;regint=0;mediaenc={mediaenc};answermode=auto;"
            "audio_codecs=PCMU/8000/1" + (";medianat=ice" if ice else "")
        ),
        config=config,
    )


def _dial(ua: Baresip, server: MrfServer) -> None:
    assert ua.command("dial", f"sip:conf1@127.0.0.1:{server.port}").get("ok")
    event = ua.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 10)
    assert event is not None and event["type"] == "CALL_ESTABLISHED", (
        f"{ua.events}\n{tail(ua.process.log, 60)}\n{tail(server.log, 60)}"
    )
    assert ua.wait_event({"CALL_MENC"}, 5) is not None, "call without SRTP"


def _hang_up(ua: Baresip) -> None:
    ua.command("hangup")
    assert ua.wait_event({"CALL_CLOSED"}, 5) is not None


def _recording(ua: Baresip) -> tuple[np.ndarray, int]:
    """The decoded audio baresip received (mono float), and its rate."""
    files = sorted(ua.workdir.glob("baresip-*/dump-*-dec.wav")) or sorted(
        ua.workdir.glob("**/dump-*-dec.wav")
    )
    assert files, f"no sndfile recording in {ua.workdir}: {sorted(ua.workdir.rglob('*'))}"
    with wave.open(str(files[-1])) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    audio = data.reshape(-1, channels)[:, 0].astype(np.float64) / 32768
    return audio, rate


def _levels(audio: np.ndarray, rate: int) -> dict[str, float]:
    """dB of each participant's tone in the spectrum of `audio`."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / rate)
    return {
        name: float(20 * np.log10(spectrum[np.abs(freqs - f) < 10].max() + 1e-12))
        for name, f in PEOPLE.items()
    }


def _tone_gaps(audio: np.ndarray, rate: int, frequency: float) -> float:
    """Longest run (seconds) without `frequency` between its first and last presence."""
    hop, width = rate // 100, rate // 50  # 10 ms hop, 20 ms Hann windows
    window = np.hanning(width)
    phasor = np.exp(-2j * np.pi * frequency * np.arange(width) / rate) * window
    frames = np.lib.stride_tricks.sliding_window_view(audio, width)[::hop]
    amplitude = np.abs(frames @ phasor)
    present = amplitude > 0.25 * np.median(amplitude[amplitude > amplitude.max() * 0.1])
    on = np.flatnonzero(present)
    assert on.size, "tone never present"
    inside = present[on[0] : on[-1] + 1]
    longest = run = 0
    for value in inside:
        run = 0 if value else run + 1
        longest = max(longest, run)
    return longest * hop / rate


def test_three_baresips_hear_each_other_not_themselves(
    mrf_server: ServerFactory, artifacts: Artifacts
) -> None:
    people = tuple(f"sip:{name}@127.0.0.1" for name in PEOPLE)
    server = mrf_server([Conference("conf1", people)])
    uas = {name: _participant(artifacts, name) for name in PEOPLE}
    try:
        for ua in uas.values():
            _dial(ua, server)
        time.sleep(3.0)
        for ua in uas.values():
            _hang_up(ua)
    finally:
        for ua in uas.values():
            ua.close()
    for name, ua in uas.items():
        log = ua.log_text()
        assert "SRTP is Enabled" in log and "failed to decrypt" not in log, tail(ua.process.log)
        audio, rate = _recording(ua)
        assert audio.shape[0] > 2 * rate, f"{name}: only {audio.shape[0] / rate:.2f} s recorded"
        levels = _levels(audio, rate)
        own = levels[name]
        for other in PEOPLE.keys() - {name}:
            assert levels[other] >= own + ISOLATION_DB, (
                f"{name} hears {other} at {levels[other]:.1f} dB, itself at {own:.1f} dB"
            )
    for row in server.media_summaries():
        assert int(row["auth_failures"]) == 0 and int(row["packets_in"]) > 100, row


ICE_ADDRESS = "10.255.0.1"  # baresip's ice module gathers no loopback candidates


@pytest.fixture
def ice_address() -> Iterator[str]:
    """A non-loopback address on ``lo`` of the test's own network namespace.

    baresip 1.0's ``ice`` module skips loopback addresses when it gathers
    candidates, so in ``unshare -n`` (only ``lo``) it would offer none; an
    extra /32 on ``lo`` gives it a host candidate that never leaves the
    namespace.  Removed again at the end (linphone needs ``lo`` alone).
    """
    ip = shutil.which("ip")
    if ip is None or not network_isolated():
        pytest.fail(
            "the ICE interop test adds an address to lo: run it in a private network "
            "namespace as root (`make test` uses unshare -n) with iproute2 installed",
            pytrace=False,
        )
    argv = [ip, "addr", "add", f"{ICE_ADDRESS}/32", "dev", "lo"]
    subprocess.run(argv, check=True, timeout=5, capture_output=True)
    try:
        yield ICE_ADDRESS
    finally:
        argv[2] = "del"
        subprocess.run(argv, check=False, timeout=5, capture_output=True)


def test_ice_dtls_and_sdes_participants_hear_each_other(
    mrf_server: ServerFactory, artifacts: Artifacts, ice_address: str
) -> None:
    people = tuple(f"sip:{name}@127.0.0.1" for name in PEOPLE)
    modes = ("sdes", "dtls", "fingerprint")
    server = mrf_server([Conference("conf1", people, key_modes=modes)])
    uas = {
        "alice": _participant(artifacts, "alice", ice=True),
        "bob": _participant(artifacts, "bob", mediaenc="dtls_srtp"),
        "carol": _participant(artifacts, "carol"),
    }
    try:
        for ua in uas.values():
            _dial(ua, server)
        time.sleep(3.0)
        for ua in uas.values():
            _hang_up(ua)
    finally:
        for ua in uas.values():
            ua.close()
    alice_log, bob_log = uas["alice"].log_text(), uas["bob"].log_text()
    assert "a=candidate:" in alice_log and ice_address in alice_log, "alice offered no ICE"
    answer = alice_log[alice_log.find("SIP/2.0 200 OK") :]
    assert "a=ice-ufrag:" in answer and "a=candidate:" in answer, "the focus answered no ICE"
    assert (
        "UDP/TLS/RTP/SAVP" in bob_log
        and "a=setup:active" in bob_log[bob_log.find("SIP/2.0 200 OK") :]
    )
    for name, ua in uas.items():
        audio, rate = _recording(ua)
        assert audio.shape[0] > 2 * rate, f"{name}: only {audio.shape[0] / rate:.2f} s recorded"
        levels = _levels(audio, rate)
        for other in PEOPLE.keys() - {name}:
            assert levels[other] >= levels[name] + ISOLATION_DB, (
                f"{name} hears {other} at {levels[other]:.1f} dB, itself at {levels[name]:.1f} dB"
            )
    rows = {row["participant"].split("@")[0][4:]: row for row in server.media_summaries()}
    assert rows["alice"]["key_mode"] == "sdes" and rows["carol"]["key_mode"] == "sdes"
    assert rows["bob"]["key_mode"] == "dtls" and rows["bob"]["suite"] != "none", rows["bob"]
    for row in rows.values():
        assert int(row["auth_failures"]) == 0 and int(row["packets_in"]) > 100, row
    log = server.log_text()
    assert "ICE connected" in log and "DTLS-SRTP connected" in log


def test_a_participant_leaving_leaves_no_gap(
    mrf_server: ServerFactory, artifacts: Artifacts
) -> None:
    people = tuple(f"sip:{name}@127.0.0.1" for name in PEOPLE)
    server = mrf_server([Conference("conf1", people)])
    uas = {name: _participant(artifacts, name) for name in PEOPLE}
    try:
        for ua in uas.values():
            _dial(ua, server)
        time.sleep(1.5)
        _hang_up(uas["carol"])
        time.sleep(1.5)
        for name in ("alice", "bob"):
            _hang_up(uas[name])
    finally:
        for ua in uas.values():
            ua.close()
    for listener, speaker in (("alice", "bob"), ("bob", "alice")):
        audio, rate = _recording(uas[listener])
        gap = _tone_gaps(audio, rate, PEOPLE[speaker])
        assert gap <= MAX_GAP, f"{listener} lost {speaker} for {gap * 1000:.0f} ms"
    carol_left = [r for r in server.media_summaries() if r["participant"].startswith("sip:carol")]
    assert carol_left, "carol's media-summary missing"


# -- key isolation ---------------------------------------------------------------------

_ANSWER_CRYPTO = re.compile(r"a=crypto:\d+ (\S+) inline:([A-Za-z0-9+/=]+)")


def _focus_key(ua: Baresip, server: MrfServer) -> tuple[str, bytes]:
    """The focus's outbound SDES key to `ua`: the a=crypto of the 200 OK it received."""
    log = ua.log_text()
    answer = log[log.find("SIP/2.0 200 OK") :]
    found = _ANSWER_CRYPTO.search(answer)
    assert found, f"no a=crypto in the 200 OK baresip got\n{log[-3000:]}"
    return found.group(1), base64.b64decode(found.group(2))


def _pcap_udp_payloads(path: Path) -> list[bytes]:
    """UDP payloads of a pcap (Linux cooked or Ethernet link layer, IPv4)."""
    data = path.read_bytes()
    (magic,) = struct.unpack_from("<I", data)
    assert magic == 0xA1B2C3D4, "not a little-endian pcap"
    linktype = struct.unpack_from("<I", data, 20)[0]
    offset, payloads = 24, []
    link_header = {1: 14, 113: 16, 276: 20}[linktype]
    while offset + 16 <= len(data):
        captured = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        ip = frame[link_header:]
        header = (ip[0] & 0x0F) * 4
        if ip[9] == 17:
            payloads.append(ip[header + 8 :])
    return payloads


_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


def _unprotected(packets: list[bytes], suite: str, key: bytes) -> int:
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=_PROFILES[suite]
    )
    session = pylibsrtp.Session(policy=policy)
    ok = 0
    for packet in packets:
        try:
            session.unprotect(packet)
            ok += 1
        except pylibsrtp.Error:
            pass
    return ok


def test_srtp_to_b_opens_only_with_b_keys(mrf_server: ServerFactory, artifacts: Artifacts) -> None:
    tshark = require_peer("tshark")
    people = tuple(f"sip:{name}@127.0.0.1" for name in ("alice", "bob"))
    server = mrf_server([Conference("conf1", people)])
    alice, bob = _participant(artifacts, "alice"), _participant(artifacts, "bob")
    capture = artifacts.directory / "to-bob.pcap"
    try:
        _dial(alice, server)
        _dial(bob, server)
        port = re.findall(r"m=audio (\d+) RTP/SAVP", bob.log_text())[0]  # bob's offer
        argv = [tshark, "-i", "lo", "-f", f"udp dst port {port}", "-a", "duration:2"]
        argv += ["-w", str(capture), "-F", "pcap", "-q"]
        sniffer = BackgroundProcess(argv, artifacts.path("tshark.log"))
        sniffer.wait(15)
        sniffer.stop()
        keys = {"alice": _focus_key(alice, server), "bob": _focus_key(bob, server)}
        _hang_up(alice)
        _hang_up(bob)
    finally:
        alice.close()
        bob.close()
    packets = [p for p in _pcap_udp_payloads(capture) if len(p) > 12 and p[0] >> 6 == 2]
    assert len(packets) > 50, f"captured {len(packets)} SRTP packets to bob"
    assert keys["alice"][1] != keys["bob"][1]
    assert _unprotected(packets, *keys["alice"]) == 0, "alice's key opened media sent to bob"
    assert _unprotected(packets, *keys["bob"]) == len(packets), "bob's key failed on his media"
