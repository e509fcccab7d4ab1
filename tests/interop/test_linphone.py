"""linphone-daemon (liblinphone 5.1, SDES-SRTP mandatory) dials in over UDP.

Its offer carries four a=crypto lines (RFC 4568), two of them AES_256_CM; the
call must reach LinphoneCallStreamsRunning, and the server must have
decrypted linphone's audio (media-summary packets_in > 0, auth_failures=0).
Without a sound card linphone sends no RTP, so a tone is played into the call
(``incall-player-start``); linphone must not fail to unprotect the server's SRTP.
Needs the suite to run under ``unshare -n`` (tests/peers/README.md, linphone): ``make test``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from .conftest import ServerFactory
from .harness import Conference, tail, wait_for
from .peers import LinphoneDaemon

pytestmark = pytest.mark.interop

CAROL = "sip:carol@127.0.0.1"


def test_linphone_dials_in_with_sdes_srtp(
    mrf_server: ServerFactory, linphone_factory: Callable[[str], LinphoneDaemon]
) -> None:
    server = mrf_server([Conference("conf1", (CAROL,))])
    phone = linphone_factory(CAROL)
    reply = phone.command(f"call sip:conf1@127.0.0.1:{server.port}")
    assert "Status: Ok" in reply, f"linphone refused the call command: {reply!r}"

    def explain() -> str:
        return (
            f"--- linphone log ---\n{tail(phone.daemon_log, 80)}\n"
            f"--- server stderr ---\n{tail(server.log, 60)}"
        )

    running = wait_for(lambda: "LinphoneCallStreamsRunning" in phone.log_text(), 10)
    assert running, f"the call never reached StreamsRunning\n{explain()}"
    status = phone.command("call-status")
    assert "LinphoneCallStreamsRunning" in status, f"{status!r}\n{explain()}"
    # Without a sound card linphone captures nothing: play a tone into the call.
    played = phone.command(f"incall-player-start {phone.tone_wav()}")
    assert "Status: Ok" in played, f"incall-player-start failed: {played!r}\n{explain()}"
    time.sleep(1.0)  # 50 packets of 20 ms
    phone.command("terminate")
    assert wait_for(lambda: "LinphoneCallEnd" in phone.log_text(), 5), explain()

    failures = re.findall(r"srtp_unprotect(?:_rtcp)?\(\) failed \(\d+\)", phone.log_text())
    assert not failures, f"linphone could not decrypt the server's SRTP: {failures[:3]}"
    row = server.wait_media_summary(CAROL)[-1]
    assert row["conference"] == server.conference_uri("conf1"), row
    assert row["kind"] == "audio" and row["key_mode"] == "sdes", row
    assert row["suite"].startswith("AES_"), f"unexpected suite for linphone's offer: {row}"
    assert int(row["packets_in"]) > 0, f"server decrypted no packet from linphone: {row}"
    assert int(row["auth_failures"]) == 0, f"SRTP authentication failures: {row}"
    assert int(row["packets_out"]) > 0, f"server sent no comfort silence: {row}"
