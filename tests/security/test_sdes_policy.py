"""SDES keys only over protected signalling: ``sip.sdes_requires_tls`` (README "Settings").

SDES (RFC 4568) puts the SRTP master keys in the SDP, in the clear as far as
SIP is concerned; TS 33.328 relies on signalling security for them.  A server
of its own here, with ``sdes_requires_tls = true`` (the default when SIP
listens on anything but loopback) and the trusted proxy ``127.0.0.2``: an SDES
offer over plain UDP from a participant gets 488 with a Warning that says
why, no SDP (so no key of ours) and no RTP; the same offer from the trusted
proxy is admitted with SRTP, and so is ``mrf ue`` over SIP/TLS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.harness import Artifacts, Conference, MrfServer, UeJoin, tail, wait_for
from tests.security.rig import ALICE, MALLORY, PROXY, ROOM
from tests.security.sip_probe import MediaWatch, SipProbe, admitted_call, sdes_offer
from tests.security.table import RefusalLog


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MrfServer]:
    server = MrfServer(tmp_path_factory.mktemp("sdes-tls"), trusted_proxies=(PROXY,))
    text = server.config.read_text()
    server.config.write_text(text.replace("[sip]\n", "[sip]\nsdes_requires_tls = true\n", 1))
    server.create_conference(Conference(ROOM, (ALICE,), key_modes=("sdes",)))
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert "Traceback (most recent call last)" not in server.log_text(), tail(server.log, 80)


def _over_tls(server: MrfServer, directory: Path) -> str:
    """``mrf ue join --transport tls --audio``: joined, and SRTP both ways."""
    proxy = f"127.0.0.1:{server.tls_port}"
    ue = UeJoin(Artifacts(directory), server, ROOM, ALICE, "--transport", "tls", "--proxy", proxy,
                "--audio", "--duration", "20")  # fmt: skip
    try:
        media = wait_for(lambda: ue.events("media"), 20.0, 0.1)
        assert ue.events("joined") and media, (ue.events(), ue.err.read_text()[-2000:])
        event = ue.events("media")[0]
        assert event["received"] > 0 and event["auth_failures"] == 0, event
    finally:
        ue.finish()
    return f"joined, {event['received']} SRTP packets in"


def test_sdes_over_plain_udp_is_488(
    strict_server: MrfServer, refusal: RefusalLog, tmp_path: Path
) -> None:
    server = strict_server
    uri = server.request_uri(ROOM)
    watch = MediaWatch()
    try:
        with SipProbe((server.host, server.port)) as probe:
            call = probe.request("INVITE", uri, from_uri=ALICE,
                                 body=sdes_offer("127.0.0.1", watch.port))  # fmt: skip
        pai = (("P-Asserted-Identity", f"<{ALICE}>"),)
        proxied = admitted_call((server.host, server.port), uri, MALLORY, local_ip=PROXY,
                                headers=pai)  # fmt: skip
        tls = _over_tls(server, tmp_path)
        packets = watch.count()
    finally:
        watch.close()
    warning = call.response.headers.get("Warning") or ""
    body = f"{len(call.response.body)}-byte body" if call.response.body else "no SDP"
    refusal.record("SDES over unprotected SIP (sdes_requires_tls)",
                   "INVITE with an SDES offer over SIP/UDP, straight from alice",
                   f"{call.status_line}, Warning {warning!r}, {body}, {packets} RTP; then via "
                   f"the trusted proxy: {proxied}; over SIP/TLS: {tls}")  # fmt: skip
    assert call.response.status == 488, call.status_line
    assert warning.startswith("399 ") and "sdes_requires_tls" in warning
    assert "inline:" not in warning  # no key material in the Warning
    assert call.response.body == b"" and packets == 0
