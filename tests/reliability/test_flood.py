"""An INVITE flood from one source while real callers dial in (issue 10).

sipp floods ``uac_invite_refused.xml`` INVITEs for a conference that does not
exist (404, RFC 3261 §21.4.5) from 127.0.0.7 at 300 calls/s for 5 s (1,500
INVITEs, each transaction answered and ACKed), while a second sipp from
127.0.0.1 dials into the real conference ``fuzz`` with SDES
(``uac_invite_accept.xml``: INVITE/200/ACK/BYE) at 20 calls/s for the same
5 s.  Every real call must connect and hang up (sipp exit status 0: no failed
call); the server must stay up without a traceback.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.harness import clean_env, free_port, require_peer, tail
from tests.peers import SIPP_DIR
from tests.reliability.conftest import (
    ALICE,
    SDES_80,
    FuzzServer,
    server_alive,
    start_fuzz_server,
    tracebacks,
)

pytestmark = pytest.mark.interop

FLOOD_RATE, FLOOD_SECONDS = 300, 5
REAL_RATE = 20


def _sipp(
    server: object, workdir: Path, name: str, *, scenario: str, ruri: str, local_ip: str,
    rate: int, calls: int,
) -> tuple[list[str], Path]:  # fmt: skip
    """argv for a bounded sipp run at ``rate`` calls/s (statistics in ``<name>.csv``)."""
    argv = [require_peer("sipp"), f"127.0.0.1:{server.port}", "-sf", str(SIPP_DIR / scenario),  # type: ignore[attr-defined]
            "-i", local_ip, "-p", str(free_port(local_ip)), "-t", "u1",
            "-r", str(rate), "-m", str(calls), "-l", str(max(calls, 10)), "-d", "0",
            "-nostdin", "-recv_timeout", "8000", "-timeout", "40", "-timeout_error",
            "-trace_err", "-error_file", str(workdir / f"{name}.errors.log"),
            "-trace_stat", "-stf", str(workdir / f"{name}.csv"), "-fd", "1"]  # fmt: skip
    keys = {"ruri": ruri, "from_uri": ALICE, "pai_uri": ALICE, "privacy": "none",
            "proto": "RTP/SAVP", "media_attr": SDES_80}  # fmt: skip
    for key, value in keys.items():
        argv += ["-key", key, value]
    return argv, workdir / f"{name}.out.log"


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=clean_env())


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
        pytest.fail(f"sipp ran longer than {timeout} s")


def _last_counter(csv: Path, column: str) -> int:
    """The final value of a cumulative column of sipp's ``-trace_stat`` file."""
    lines = [line.split(";") for line in csv.read_text().splitlines() if line.strip()]
    header, last = lines[0], lines[-1]
    return int(last[header.index(column)])


@pytest.fixture
def flood_server(tmp_path: Path) -> FuzzServer:
    return start_fuzz_server(tmp_path / "server")


def test_invite_flood_from_one_source_leaves_real_callers_unharmed(
    flood_server: FuzzServer, tmp_path: Path
) -> None:
    server = flood_server.server
    try:
        flood_argv, flood_log = _sipp(
            server, tmp_path, "flood", scenario="uac_invite_refused.xml",
            ruri=server.request_uri("no-such-conference"), local_ip="127.0.0.7",
            rate=FLOOD_RATE, calls=FLOOD_RATE * FLOOD_SECONDS,
        )  # fmt: skip
        real_argv, real_log = _sipp(
            server, tmp_path, "real", scenario="uac_invite_accept.xml",
            ruri=server.request_uri("fuzz"), local_ip="127.0.0.1",
            rate=REAL_RATE, calls=REAL_RATE * FLOOD_SECONDS,
        )  # fmt: skip
        flood = _start(flood_argv, flood_log)
        real = _start(real_argv, real_log)
        real_rc = _wait(real, 60)
        flood_rc = _wait(flood, 60)
        real_csv = tmp_path / "real.csv"
        real_ok = _last_counter(real_csv, "SuccessfulCall(C)")
        real_failed = _last_counter(real_csv, "FailedCall(C)")
        flood_done = _last_counter(tmp_path / "flood.csv", "SuccessfulCall(C)")
        sent = FLOOD_RATE * FLOOD_SECONDS
        print(f"flood: {flood_done} of {sent} INVITEs refused (rc={flood_rc}); "
              f"real callers: {real_ok} connected, {real_failed} failed")  # fmt: skip
        assert real_rc == 0 and real_failed == 0, tail(real_log, 40)
        assert real_ok == REAL_RATE * FLOOD_SECONDS
        # the flood was real: most of its INVITEs reached the server and were refused
        assert flood_done >= FLOOD_RATE * FLOOD_SECONDS // 2, tail(flood_log, 40)
        assert server_alive(server), "the server died under the flood"
        assert not tracebacks(server), tracebacks(server)
    finally:
        server.stop()
