"""Dial-out and REFER against real peers (issue: dial-out, REFER, identity checks).

The server runs in the test's event loop (``mrf.server.start``, exactly what
``mrf serve`` runs) so the test can call the focus's dial-out directly and read
its per-stream counters; the peers are the real baresip, linphone-daemon and
sipp processes.  Blocking peer drivers run in worker threads.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from focus.call import CallState
from mrf.server import Server, start
from mrf.settings import load_settings
from tests.peers import SIPP_DIR

from .harness import Artifacts, BackgroundProcess, free_port, require_peer, tail
from .peers import Baresip, LinphoneDaemon

pytestmark = pytest.mark.interop

ALICE = "sip:alice@127.0.0.1"  # the account of tests/peers/baresip/accounts
CAROL = "sip:carol@127.0.0.1"  # a chair
DAVE = "sip:dave@127.0.0.1"  # a participant
SIPP_IP = "127.0.0.5"  # the sipp UAS stands for a terminating proxy's side


@asynccontextmanager
async def serve(tmp_path: Path, *, trusted: tuple[str, ...] = ()) -> AsyncIterator[Server]:
    low = 26000 + (free_port() % 40) * 20  # a small RTP range of our own
    config = tmp_path / "mrf.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "var"}"\n[sip]\nport = 0\ntls_port = 0\n'
        f"trusted_proxies = {list(trusted)!r}\n[media]\nrtp_ports = [{low}, {low + 19}]\n"
        "[msrp]\nport = 0\n[bfcp]\nport = 0\n".replace("'", '"')
    )
    server = await start(load_settings(config, environ={}))
    server.store.create_conference(
        "conf1",
        [
            (ALICE, "participant"),
            (CAROL, "chair"),
            (DAVE, "participant"),
            ("sip:bob@127.0.0.5", "participant"),
        ],  # fmt: skip
    )
    try:
        async with asyncio.timeout(60):
            yield server
    finally:
        await server.close()


def udp_port(server: Server) -> int:
    return server.endpoint.local_address("udp").port


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


_STARTED: list[BackgroundProcess] = []


@pytest.fixture(autouse=True)
def _stop_sipp() -> object:
    """Every sipp this module starts is stopped at teardown, pass or fail."""
    yield
    while _STARTED:
        _STARTED.pop().stop(grace=2)


def sipp_uas(artifacts: Artifacts, scenario: str, port: int, **keys: str) -> BackgroundProcess:
    argv = [require_peer("sipp"), "-sf", str(SIPP_DIR / scenario), "-i", SIPP_IP, "-p", str(port),
            "-m", "1", "-nostdin", "-timeout", "30", "-timeout_error", "-trace_msg",
            "-message_file", str(artifacts.path(f"{scenario}.msg")), "-trace_logs", "-log_file",
            str(artifacts.path(f"{scenario}.log"))]  # fmt: skip
    for name, value in keys.items():
        argv += ["-key", name, value]
    _STARTED.append(BackgroundProcess(argv, artifacts.path(f"{scenario}.out")))
    return _STARTED[-1]


def test_dial_out_to_baresip_srtp_up_then_refer_makes_it_dial_in(
    tmp_path: Path, baresip_factory: Callable[[], Baresip]
) -> None:
    async def main() -> None:
        async with serve(tmp_path) as server:
            ua = await asyncio.to_thread(baresip_factory)  # auto-answer, srtp-mand
            call = await server.focus.dialout.dial("conf1", f"{ALICE}:{ua.sip_port}")
            assert call.state is CallState.CONNECTED, call.reason
            menc = await asyncio.to_thread(ua.wait_event, {"CALL_MENC"}, 10)
            assert menc is not None, f"baresip reports no SRTP:\n{ua.log_text()[-3000:]}"
            stream = call.streams[0]
            await until(lambda: stream.packets_in > 20 and stream.packets_out > 20)
            assert stream.auth_failures == 0
            (entry,) = server.focus.roster("conf1")
            assert (entry["joined_by"], entry["state"]) == ("dial-out", "connected")
            # REFER: baresip transfers itself to the conference URI, i.e. dials in
            assert await server.focus.dialout.refer(call.call_id) == 202

            def dialled_in() -> bool:
                return any(c.joined_by == "dial-in" for c in server.focus.calls)

            await until(dialled_in, 15)
            (incoming,) = [c for c in server.focus.calls if c.joined_by == "dial-in"]
            assert incoming.participant == ALICE
            await until(lambda: incoming.streams[0].packets_in > 10)
            log = ua.log_text()
            assert "SRTP is Enabled" in log and "failed to decrypt" not in log

    asyncio.run(main())


def test_dial_out_to_linphone(
    tmp_path: Path, artifacts: Artifacts, request: pytest.FixtureRequest
) -> None:
    async def main() -> None:
        async with serve(tmp_path) as server:
            daemon = await asyncio.to_thread(LinphoneDaemon, artifacts, DAVE, auto_answer=True)
            request.addfinalizer(daemon.close)
            call = await server.focus.dialout.dial("conf1", f"{DAVE}:{daemon.port}")
            assert call.state is CallState.CONNECTED, call.reason
            await asyncio.to_thread(daemon.command, f"incall-player-start {daemon.tone_wav()}")
            await until(lambda: call.streams[0].packets_in > 20, 15)
            assert call.streams[0].auth_failures == 0
            assert "srtp_unprotect() failed" not in daemon.log_text()

    asyncio.run(main())


@pytest.mark.parametrize("asserted", ["sip:mallory@127.0.0.1", "sip:dave@127.0.0.1"])
def test_retargeted_answer_gets_bye_and_no_rtp(
    tmp_path: Path, artifacts: Artifacts, asserted: str
) -> None:
    async def main() -> None:
        watcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        watcher.bind((SIPP_IP, 0))
        watcher.setblocking(False)
        port = free_port(SIPP_IP)
        # the sipp UAS is reached as a trusted proxy would be: its PAI is believed
        async with serve(tmp_path, trusted=(SIPP_IP,)) as server:
            uas = sipp_uas(artifacts, "uas_dialout_answer.xml", port, pai=asserted,
                           rtp_port=str(watcher.getsockname()[1]))  # fmt: skip
            await asyncio.sleep(0.5)
            call = await server.focus.dialout.dial("conf1", f"sip:bob@{SIPP_IP}:{port}")
            assert call.state is CallState.FAILED and (call.reason or "").startswith("403")
            code = await asyncio.to_thread(uas.wait, 10)
            assert code == 0, tail(artifacts.path("uas_dialout_answer.xml.msg"), 80)
            messages = artifacts.path("uas_dialout_answer.xml.msg").read_text()
            assert messages.count("BYE sip:") == 1
            await asyncio.sleep(0.5)
            with pytest.raises(BlockingIOError):
                watcher.recv(2048)  # not one RTP packet reached the answerer
            assert server.focus.calls == [] and len(server.media) == 0
        watcher.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("scenario", "keys", "reason"),
    [
        ("uas_dialout_busy.xml", {}, "486 Busy Here"),
        ("uas_dialout_decline.xml", {}, "603 Decline"),
        ("uas_dialout_ring.xml", {}, "408 ring timeout"),
    ],
)
def test_refusals_and_ring_timeout_on_the_roster(
    tmp_path: Path, artifacts: Artifacts, scenario: str, keys: dict[str, str], reason: str
) -> None:
    async def main() -> None:
        port = free_port(SIPP_IP)
        async with serve(tmp_path) as server:
            server.focus.dialout.config = type(server.focus.dialout.config)(ring_timeout=2.0)
            uas = sipp_uas(artifacts, scenario, port, **keys)
            await asyncio.sleep(0.5)
            call = await server.focus.dialout.dial("conf1", f"sip:bob@{SIPP_IP}:{port}")
            assert (call.state, call.reason) == (CallState.FAILED, reason)
            (entry,) = server.focus.roster("conf1")
            assert (entry["state"], entry["reason"]) == ("failed", reason)
            assert await asyncio.to_thread(uas.wait, 10) == 0, tail(uas.log, 40)

    asyncio.run(main())


@pytest.mark.parametrize(("sender", "final"), [(CAROL, "202"), (DAVE, "403")])
def test_refer_to_the_focus_by_chair_only(
    tmp_path: Path, artifacts: Artifacts, baresip_factory: Callable[[], Baresip],
    sender: str, final: str,
) -> None:  # fmt: skip
    async def main() -> None:
        async with serve(tmp_path) as server:
            ua = await asyncio.to_thread(baresip_factory)
            target = f"{ALICE}:{ua.sip_port}"
            argv = [require_peer("sipp"), f"127.0.0.1:{udp_port(server)}", "-sf",
                    str(SIPP_DIR / "uac_refer.xml"), "-i", "127.0.0.1", "-p", str(free_port()),
                    "-m", "1", "-nostdin", "-timeout", "30", "-timeout_error", "-trace_logs",
                    "-log_file", str(artifacts.path("refer.log")), "-key", "ruri",
                    f"sip:conf1@127.0.0.1:{udp_port(server)}", "-key", "from_uri", sender,
                    "-key", "refer_to", target]  # fmt: skip
            uac = BackgroundProcess(argv, artifacts.path("refer.out"))
            _STARTED.append(uac)
            assert await asyncio.to_thread(uac.wait, 30) == 0, tail(uac.log, 40)
            log = artifacts.path("refer.log").read_text()
            assert f"FINAL {final}" in log
            if final == "202":
                assert "SIPFRAG SIP/2.0 100 Trying" in log and "SIPFRAG SIP/2.0 200 OK" in log
                (call,) = server.focus.calls
                assert (call.participant, call.joined_by) == (ALICE, "dial-out")
            else:
                assert server.focus.calls == []

    asyncio.run(main())


@pytest.mark.parametrize("answerer", ["baresip", "retargeted"])
def test_dial_out_through_kamailio_as_trusted_pcscf(
    tmp_path: Path, artifacts: Artifacts, baresip_factory: Callable[[], Baresip],
    kamailio_factory: Callable[..., object], answerer: str,
) -> None:  # fmt: skip
    """The IMS topology: focus → kamailio (the only trusted proxy) → the callee.

    kamailio asserts the answerer's identity in the 2xx when the callee did not;
    a callee that asserts someone else (re-targeting) is dropped with BYE.
    """
    from focus.dialout import DialOutConfig
    from focus.sip.transaction import SipAddress

    async def main() -> None:
        port = free_port(SIPP_IP)
        if answerer == "baresip":
            ua = await asyncio.to_thread(baresip_factory)
            callee, target = f"sip:127.0.0.1:{ua.sip_port}", f"{ALICE}:{ua.sip_port}"
        else:
            callee, target = f"sip:{SIPP_IP}:{port}", f"sip:bob@{SIPP_IP}:{port}"
        kam = await asyncio.to_thread(kamailio_factory, as_uri=callee, assert_answerer=True)
        async with serve(tmp_path, trusted=(kam.host,)) as server:  # type: ignore[attr-defined]
            proxy = SipAddress("udp", kam.host, kam.port)  # type: ignore[attr-defined]
            server.focus.dialout.config = DialOutConfig(outbound_proxy=proxy)
            if answerer == "baresip":
                call = await server.focus.dialout.dial("conf1", target)
                assert call.state is CallState.CONNECTED, call.reason
                assert call.participant == ALICE
                await until(lambda: call.streams[0].packets_in > 10)
                assert "PCSCF" in kam.log_text()  # type: ignore[attr-defined]
                return
            watcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            watcher.bind((SIPP_IP, 0))
            watcher.setblocking(False)
            uas = sipp_uas(artifacts, "uas_dialout_answer.xml", port, pai="sip:mallory@127.0.0.1",
                           rtp_port=str(watcher.getsockname()[1]))  # fmt: skip
            await asyncio.sleep(0.5)
            call = await server.focus.dialout.dial("conf1", target)
            assert call.state is CallState.FAILED and "mallory" in (call.reason or "")
            assert await asyncio.to_thread(uas.wait, 10) == 0, tail(uas.log, 40)
            await asyncio.sleep(0.3)
            with pytest.raises(BlockingIOError):
                watcher.recv(2048)
            watcher.close()

    asyncio.run(main())
