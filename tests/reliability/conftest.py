"""A ``mrf serve`` for the reliability suite: conference ``fuzz``, embedded KMS, enrolled caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.harness import Artifacts, MrfServer, free_port, tail, wait_for
from tests.interop.peers import SIPP_OFFER_CRYPTO, Sipp
from tests.reliability.hostile import Target

ALICE, BOB = "sip:alice@127.0.0.1", "sip:bob@127.0.0.1"
KEY_MODES = ("--key-mode", "sdes", "--key-mode", "fingerprint", "--key-mode", "mikey-ticket")


@dataclass
class FuzzServer:
    """The server, the target description and the caller's KMS key."""

    server: MrfServer
    target: Target
    kms_url: str
    kms_key: str


def start_fuzz_server(workdir: Path, rtp_port_count: int = 2000) -> FuzzServer:
    """Config with the embedded KMS on a free port, conference ``fuzz``, alice enrolled."""
    server = MrfServer(workdir, rtp_port_count=rtp_port_count)
    url = f"http://127.0.0.1:{free_port(tcp_and_udp=False)}/kms"
    text = server.config.read_text()
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


def server_alive(server: MrfServer) -> bool:
    """The process runs and answers OPTIONS over UDP within 5 s."""
    from tests.interop.harness import sip_options

    running = server.process is not None and server.process.running()
    return running and bool(wait_for(lambda: sip_options(server.host, server.port), 5.0, 0.2))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    found = start_fuzz_server(tmp_path_factory.mktemp("fuzz"))
    yield found
    found.server.stop()


def tracebacks(server: MrfServer) -> str:
    """The server log's tail when it holds a traceback, else ''."""
    text = server.log_text()
    return tail(server.log, 120) if "Traceback (most recent call last)" in text else ""


SDES_80 = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + SIPP_OFFER_CRYPTO["1"][1]


def sipp_call(
    server: MrfServer,
    artifacts: Artifacts,
    *,
    calls: int = 1,
    conference: str = "fuzz",
    local_ip: str = "127.0.0.1",
    timeout: float = 20.0,
) -> int:
    """sipp ``uac_invite_accept.xml`` (SDES) from alice; sipp's exit status (0: all passed)."""
    keys = {
        "ruri": server.request_uri(conference), "from_uri": ALICE, "pai_uri": ALICE,
        "privacy": "none", "proto": "RTP/SAVP", "media_attr": SDES_80,
    }  # fmt: skip
    run = Sipp(artifacts).run(
        "uac_invite_accept.xml", f"{server.host}:{server.port}", keys=keys, calls=calls,
        local_ip=local_ip, timeout=timeout,
    )  # fmt: skip
    if run.returncode != 0:
        print(run.explain())
    return run.returncode
