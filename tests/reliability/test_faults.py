"""Faults (issue 10): ``kill -9`` of ``mrf serve`` in a busy conference, then restart.

While sipp callers are in the conference (calls held for seconds), the server
gets SIGKILL (no shutdown code runs).  After a restart on the same data
directory and database (SQLite file, and again on a throw-away PostgreSQL:
``database_url`` in the server config, tests/conftest.py) the conference, its
policy (key modes) and its authorized list are listed unchanged by ``mrf
conference list``, the KMS enrollment still works (a REQUEST_INIT from the
enrolled caller is granted), and a participant dials in again at once.  KMS
unreachable → 503 with Retry-After while SDES calls still connect is
tests/interop/test_mikey.py::test_kms_down_is_503_while_sdes_baresip_still_joins.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.interop.harness import (
    Artifacts,
    MrfServer,
    clean_env,
    free_port,
    require_peer,
)
from tests.peers import SIPP_DIR
from tests.reliability.conftest import (
    ALICE,
    BOB,
    KEY_MODES,
    SDES_80,
    FuzzServer,
    sipp_call,
)
from tests.reliability.hostile import Target
from tests.reliability.hostile_tls import _http_post

pytestmark = pytest.mark.interop


def _listing(server: object) -> list[dict[str, object]]:
    out = server.cli("conference", "list").stdout  # type: ignore[attr-defined]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _busy_callers(server: object, workdir: Path) -> subprocess.Popen[bytes]:
    """sipp: 4 SDES calls held 20 s each (still up when the server is killed)."""
    sipp = require_peer("sipp")
    argv = [sipp, f"127.0.0.1:{server.port}", "-sf", str(SIPP_DIR / "uac_invite_accept.xml"),  # type: ignore[attr-defined]
            "-i", "127.0.0.1", "-p", str(free_port()), "-t", "u1", "-m", "4", "-l", "4",
            "-d", "20000", "-nostdin", "-timeout", "30"]  # fmt: skip
    keys = {"ruri": server.request_uri("fuzz"), "from_uri": ALICE, "pai_uri": ALICE,  # type: ignore[attr-defined]
            "privacy": "none", "proto": "RTP/SAVP", "media_attr": SDES_80}  # fmt: skip
    for name, value in keys.items():
        argv += ["-key", name, value]
    with (workdir / "busy-sipp.log").open("wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=clean_env())


def _start_server(workdir: Path, database_url: str) -> FuzzServer:
    """Conference ``fuzz`` (alice, bob; SDES, fingerprint, MIKEY-TICKET), alice enrolled at
    the embedded KMS, the store at ``database_url``."""
    server = MrfServer(workdir, rtp_port_count=400)
    url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    text = server.config.read_text()
    text = text.replace(f'database_url = "sqlite:///{server.data_dir}/mrf.db"',
                        f'database_url = "{database_url}"')  # fmt: skip
    assert f'database_url = "{database_url}"' in text
    server.config.write_text(
        text[: text.index("[kms]")] + f'[kms]\nurl = "{url}"\nembedded = true\n'
    )
    server.cli("conference", "create", "fuzz", "--participant", ALICE, "--participant", BOB,
               *KEY_MODES)  # fmt: skip
    key = server.cli("kms", "enroll", ALICE).stdout.strip()
    server.start()
    target = Target(server.host, server.port, server.tls_port, server.conference_uri("fuzz"),
                    ALICE, workdir)  # fmt: skip
    return FuzzServer(server, target, url, key)


def test_kill_9_in_a_busy_conference_loses_nothing(tmp_path: Path, database_url: str) -> None:
    fuzz = _start_server(tmp_path / "server", database_url)
    server = fuzz.server
    before = _listing(server)
    busy = _busy_callers(server, tmp_path)
    try:
        deadline = time.monotonic() + 10
        while server.log_text().count(" joined sip:fuzz@") < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.process is not None
        joined = server.log_text().count(" joined sip:fuzz@")
        assert joined >= 4, f"only {joined} callers were in the conference when it was killed"
        server.process.stop(signal.SIGKILL, grace=5)  # kill -9: no shutdown code runs
    finally:
        busy.kill()
        busy.wait(10)
    server.process = None
    server.returncode = None
    start = time.monotonic()
    server.start()
    try:
        assert _listing(server) == before and before[0]["participants"], before
        assert sipp_call(server, Artifacts(tmp_path), calls=2) == 0
        print(f"restart to a connected call: {time.monotonic() - start:.1f} s")
        reply = asyncio.run(_kms_request(fuzz.kms_url, fuzz.kms_key))
        assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
    finally:
        server.stop()


async def _kms_request(url: str, key: str) -> bytes:
    from focus.mikey.initiator import MikeyTicketRequest

    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    request = MikeyTicketRequest.build(
        ALICE.encode(), bytes.fromhex(key), responders=[b"sip:fuzz@127.0.0.1"], now=time.time()
    )
    return await _http_post(host, int(port), "/" + path, bytes(request.message))
