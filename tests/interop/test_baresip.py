"""baresip (SDES-SRTP mandatory, RFC 4568 / RFC 3711) dials in over UDP, TCP and TLS.

Pitfall (tests/peers/README.md, baresip): baresip's ``srtp-mand`` accepts a plain answer,
so SRTP is judged by the CALL_MENC event and the "SRTP is Enabled" log line,
never by the call being up.  Both directions are checked: the server decrypted
baresip's packets (media-summary packets_in > 0, auth_failures=0) and baresip
decrypted the server's comfort silence (its Receive counter > 0, no
"failed to decrypt").
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from .conftest import ServerFactory
from .harness import Conference, MrfServer, tail
from .peers import Baresip, srtp_suites_from_menc

pytestmark = pytest.mark.interop

ALICE = "sip:alice@127.0.0.1"  # the account of tests/peers/baresip/accounts
MEDIA_SECONDS = 1.0  # 50 packets of 20 ms each way
_RTP_STATS = re.compile(r"packets:\s+(\d+)\s+(\d+)")


def _target(server: MrfServer, transport: str) -> str:
    if transport == "udp":
        return f"sip:conf1@127.0.0.1:{server.port}"
    if transport == "tcp":
        return f"sip:conf1@127.0.0.1:{server.port};transport=tcp"
    assert transport == "tls", transport
    # baresip 1.0's dial turns "sips:..." into "sip:sips:...": TLS via the parameter.
    return f"sip:conf1@127.0.0.1:{server.tls_port};transport=tls"


def _explain(ua: Baresip, server: MrfServer) -> str:
    return (
        f"baresip events: {ua.events}\n--- baresip (SIP trace) ---\n{tail(ua.process.log, 80)}\n"
        f"--- server stderr ---\n{tail(server.log, 60)}"
    )


def _call(ua: Baresip, server: MrfServer, target: str) -> dict[str, object]:
    """Dial, require SRTP, let media flow, hang up; the CALL_MENC event."""
    assert ua.command("dial", target).get("ok"), _explain(ua, server)
    event = ua.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, 10)
    assert event is not None and event["type"] == "CALL_ESTABLISHED", (
        f"baresip call to {target} not established\n{_explain(ua, server)}"
    )
    menc = ua.wait_event({"CALL_MENC"}, 5)
    assert menc is not None, f"no CALL_MENC: the call runs without SRTP\n{_explain(ua, server)}"
    time.sleep(MEDIA_SECONDS)
    ua.command("hangup")
    assert ua.wait_event({"CALL_CLOSED"}, 5) is not None, _explain(ua, server)
    return menc


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_baresip_dials_in_with_sdes_srtp(
    mrf_server: ServerFactory, baresip_factory: Callable[[], Baresip], transport: str
) -> None:
    server = mrf_server([Conference("conf1", (ALICE,))])
    ua = baresip_factory()
    menc = _call(ua, server, _target(server, transport))
    suite = srtp_suites_from_menc(menc)
    assert suite.startswith(("AES_", "AEAD_")), f"CALL_MENC without a suite: {menc}"

    row = server.wait_media_summary(ALICE)[-1]
    ua.close()
    log = ua.log_text()
    port = server.tls_port if transport == "tls" else server.port
    sent = rf"^{transport.upper()} 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:{port}\b"
    assert re.search(sent, log, re.MULTILINE), f"baresip sent nothing over {transport}\n{log}"
    assert "SRTP is Enabled" in log, _explain(ua, server)
    assert "failed to decrypt" not in log, f"baresip could not decrypt the server's SRTP\n{log}"
    stats = _RTP_STATS.findall(log)
    assert stats and int(stats[-1][1]) > 0, f"baresip received no audio from the server: {stats}"

    assert row["conference"] == server.conference_uri("conf1"), row
    assert row["kind"] == "audio" and row["key_mode"] == "sdes", row
    assert row["suite"] == suite, f"server suite {row['suite']} != baresip's {suite}"
    assert int(row["packets_in"]) > 0, f"server decrypted no packet from baresip: {row}"
    assert int(row["auth_failures"]) == 0, f"SRTP authentication failures: {row}"
    assert int(row["replays"]) == 0, f"replays reported for a fresh stream: {row}"
    assert int(row["packets_out"]) > 0, f"server sent no comfort silence: {row}"
