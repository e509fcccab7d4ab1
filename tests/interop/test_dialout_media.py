"""Dialled-out participants are mixed like dialled-in ones (real peers, SDES-SRTP).

* One baresip is dialled out by the focus, another dials in; each sends its own
  ``ausine`` tone and records what it decodes (``sndfile``), exactly as in
  ``test_mixing``: each hears the other's tone and not its own (≥ 20 dB).
* linphone is dialled out through kamailio, the trusted P-CSCF that asserts the
  answerer (RFC 3325): the call connects as the invited identity and SRTP
  flows both ways with no authentication failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from focus.call import CallState
from focus.dialout import DialOutConfig
from focus.sip.transaction import SipAddress

from .harness import Artifacts, tail
from .peers import LinphoneDaemon
from .test_dialout import ALICE, CAROL, DAVE, serve, udp_port, until
from .test_mixing import ISOLATION_DB, _levels, _participant, _recording

pytestmark = pytest.mark.interop


def test_dialled_out_and_dialled_in_baresips_hear_each_other_not_themselves(
    tmp_path: Path, artifacts: Artifacts
) -> None:
    alice = _participant(artifacts, "alice")  # dialled out (answermode=auto), 400 Hz
    carol = _participant(artifacts, "carol")  # dials in, 1100 Hz
    uas = {"alice": alice, "carol": carol}

    async def main() -> None:
        async with serve(tmp_path) as server:
            call = await server.focus.dialout.dial("conf1", f"{ALICE}:{alice.sip_port}")
            assert call.state is CallState.CONNECTED, call.reason
            assert await asyncio.to_thread(alice.wait_event, {"CALL_MENC"}, 10), "no SRTP"
            room = f"sip:conf1@127.0.0.1:{udp_port(server)}"
            assert (await asyncio.to_thread(carol.command, "dial", room)).get("ok")
            event = await asyncio.to_thread(
                carol.wait_event, {"CALL_ESTABLISHED", "CALL_CLOSED"}, 10
            )
            assert event is not None and event["type"] == "CALL_ESTABLISHED", carol.events
            joined = {c.joined_by: c for c in server.focus.calls}
            assert set(joined) == {"dial-in", "dial-out"}, server.focus.roster("conf1")
            await asyncio.sleep(3.0)
            for ua in uas.values():
                await asyncio.to_thread(ua.command, "hangup")
                assert await asyncio.to_thread(ua.wait_event, {"CALL_CLOSED"}, 5)
            for joined_call in joined.values():
                stream = joined_call.streams.get(0)
                assert stream is None or stream.auth_failures == 0

    try:
        asyncio.run(main())
    finally:
        for ua in uas.values():
            ua.close()
    for name, ua in uas.items():
        log = ua.log_text()
        assert "SRTP is Enabled" in log and "failed to decrypt" not in log, tail(ua.process.log)
        audio, rate = _recording(ua)
        assert audio.shape[0] > 2 * rate, f"{name}: only {audio.shape[0] / rate:.2f} s recorded"
        levels = _levels(audio, rate)
        other = "carol" if name == "alice" else "alice"
        assert levels[other] >= levels[name] + ISOLATION_DB, (
            f"{name} hears {other} at {levels[other]:.1f} dB, itself at {levels[name]:.1f} dB"
        )


def test_linphone_dialled_out_through_kamailio_as_trusted_pcscf(
    tmp_path: Path, artifacts: Artifacts, kamailio_factory: Callable[..., object],
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    async def main() -> None:
        daemon = await asyncio.to_thread(LinphoneDaemon, artifacts, DAVE, auto_answer=True)
        request.addfinalizer(daemon.close)
        kam = await asyncio.to_thread(
            kamailio_factory, as_uri=f"sip:127.0.0.1:{daemon.port}", assert_answerer=True
        )
        async with serve(tmp_path, trusted=(kam.host,)) as server:  # type: ignore[attr-defined]
            proxy = SipAddress("udp", kam.host, kam.port)  # type: ignore[attr-defined]
            server.focus.dialout.config = DialOutConfig(outbound_proxy=proxy)
            call = await server.focus.dialout.dial("conf1", f"{DAVE}:{daemon.port}")
            assert call.state is CallState.CONNECTED, (call.reason, daemon.log_text()[-3000:])
            assert call.participant == DAVE and call.peer.host == kam.host  # type: ignore[attr-defined]
            assert "PCSCF" in kam.log_text()  # type: ignore[attr-defined]
            await asyncio.to_thread(daemon.command, f"incall-player-start {daemon.tone_wav()}")
            stream = call.streams[0]
            await until(lambda: stream.packets_in > 20 and stream.packets_out > 20, 15)
            assert stream.auth_failures == 0 and stream.replays == 0
            assert "srtp_unprotect() failed" not in daemon.log_text()
            (entry,) = server.focus.roster("conf1")
            assert (entry["uri"], entry["state"], entry["joined_by"]) == (
                DAVE, "connected", "dial-out",
            )  # fmt: skip
            assert CAROL not in {e["uri"] for e in server.focus.roster("conf1")}

    asyncio.run(main())
