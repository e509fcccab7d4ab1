"""Our MSRP encoder against kamailio's msrp module.

kamailio (``tests/peers/kamailio/msrp-echo.cfg``) parses every frame and answers SEND and
NICKNAME with 200 only when the frame is well formed (a wrong end-line gets
no answer at all).  The frames come from :class:`mrf.msrp.connection.MsrpConnection`,
the core the focus and ``mrf ue`` use, over plain TCP and over TLS through
:class:`mrf.secure_channel.SecureChannel` (whose engine checks kamailio's
certificate against its fingerprint, as it would an SDP ``a=fingerprint``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from focus.sdp.attributes import SdpFingerprint, fingerprints_match
from mrf.msrp.connection import MsrpConfig, MsrpConnection
from mrf.msrp.cpim import CPIM_TYPE, CpimMessage
from mrf.msrp.events import MsrpDeliveryFailed, MsrpEvent, MsrpMessageDelivered
from mrf.msrp.uri import MsrpUri
from mrf.secure_channel import SecureChannel
from mrf.tls import certificate_der, ensure_certificate
from mrf.tls_engine import CertificateTlsEngine, make_context
from tests.peers import render, write_certificate

from .harness import Artifacts, BackgroundProcess, clean_env, free_port, tail, wait_for
from .peers import make_certs, require_peer

pytestmark = pytest.mark.interop


@dataclass
class KamailioMsrp:
    process: BackgroundProcess
    tcp_port: int
    tls_port: int
    cert: Path

    def log(self) -> str:
        return self.process.text()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def kamailio(artifacts: Artifacts) -> Iterator[KamailioMsrp]:
    binary = require_peer("kamailio")
    conf = make_certs(artifacts)
    workdir = artifacts.directory / "kamailio-msrp"
    (workdir / "run").mkdir(parents=True)
    tcp_port, tls_port = free_port(tcp_and_udp=False), free_port(tcp_and_udp=False)
    cfg = render("kamailio/msrp-echo.cfg", workdir / "msrp.cfg", TCP_PORT=tcp_port,
                 TLS_PORT=tls_port, TLS_CFG=conf / "kamailio/tls.cfg")  # fmt: skip
    argv = [binary, "-f", str(cfg), "-DD", "-E", "-Y", str(workdir / "run"), "-m", "64", "-M", "8"]
    process = BackgroundProcess(argv, artifacts.path("kamailio-msrp.log"), env=clean_env())
    try:
        up = wait_for(lambda: not process.running() or (_listening(tcp_port)
                                                        and _listening(tls_port)), 15)  # fmt: skip
        if not up or not process.running():
            pytest.fail(f"kamailio MSRP did not start:\n{tail(process.log)}", pytrace=False)
        yield KamailioMsrp(process, tcp_port, tls_port, write_certificate(conf / "certs").cert)
    finally:
        process.stop(grace=5)


class Client:
    """An MsrpConnection driven over a plain or a TLS stream (a StreamApp too)."""

    def __init__(self, remote_port: int, scheme: str, chunk_size: int) -> None:
        self.local = MsrpUri.parse(f"{scheme}://127.0.0.1:45123/mrfclient1;tcp")
        remote = MsrpUri.parse(f"{scheme}://127.0.0.1:{remote_port}/kamsess9;tcp")
        self.msrp = MsrpConnection(MsrpConfig(chunk_size=chunk_size))
        self.msrp.bind(self.local, (remote,))
        self.events: list[MsrpEvent] = []
        self.opened = asyncio.Event()
        self.channel: SecureChannel | None = None
        self.writer: asyncio.StreamWriter | None = None

    def write(self, data: bytes) -> None:
        if self.channel is not None:
            self.channel.write(data)
        elif self.writer is not None:
            self.writer.write(data)

    def flush(self) -> None:
        self.write(self.msrp.data_to_send())

    def feed(self, data: bytes) -> None:
        self.msrp.receive_data(data, 0.0)
        while (event := self.msrp.next_event()) is not None:
            self.events.append(event)

    def channel_open(self, channel: SecureChannel) -> None:
        self.channel = channel
        self.opened.set()

    def channel_data(self, channel: SecureChannel, data: bytes) -> None:
        self.feed(data)

    def channel_closed(self, channel: SecureChannel, reason: str | None) -> None:
        self.opened.set()

    def delivered(self) -> set[str]:
        return {e.message_id for e in self.events if isinstance(e, MsrpMessageDelivered)}


async def _exchange(client: Client, expected: int) -> None:
    client.flush()
    for _ in range(500):
        if len(client.events) >= expected:
            return
        await asyncio.sleep(0.01)


def _queue_frames(client: Client) -> tuple[list[str], str]:
    """A one-chunk CPIM message, a chunked binary one, an empty one, and a NICKNAME."""
    cpim = CpimMessage([("From", "<sip:alice@127.0.0.1>"), ("To", "<sip:chat@127.0.0.1>")],
                       [("Content-Type", "text/plain;charset=utf-8")],
                       "Grüße, 東京 ☃".encode())  # fmt: skip
    ids = [client.msrp.send_message(client.local, CPIM_TYPE, bytes(cpim), 0.0)]
    payload = hashlib.sha256(b"seed").digest() * 700  # 22400 bytes: 3 chunks of 8 KiB
    ids.append(client.msrp.send_message(client.local, "application/octet-stream", payload, 0.0))
    ids.append(client.msrp.send_message(client.local, "text/plain", b"", 0.0))
    nickname = client.msrp.send_nickname(client.local, 'Ali "the" Baba', 0.0)
    return ids, nickname


def _check(client: Client, ids: list[str], nickname: str, kamailio: KamailioMsrp) -> None:
    failures = [e for e in client.events if isinstance(e, MsrpDeliveryFailed)]
    assert not failures, failures
    assert client.delivered() == {*ids, nickname}, (client.events, kamailio.log()[-3000:])
    log = kamailio.log()
    assert len(re.findall(r"MSRP-IN method=SEND code=", log)) == 5  # 1 + 3 chunks + 1
    assert len(re.findall(r"MSRP-IN method=NICKNAME code=", log)) == 1
    # kamailio parsed our Message-IDs; its bodylen counts the CRLF before the end-line too
    sends = re.findall(r"MSRP-IN method=SEND .*? msgid=(\S+) .*? bodylen=(\d+)", log)
    assert {m for m, _ in sends} == set(ids)
    assert sorted(int(n) for m, n in sends if m == ids[1]) == [6018, 8194, 8194]


def test_kamailio_answers_our_frames_over_tcp(kamailio: KamailioMsrp) -> None:
    async def scenario() -> tuple[Client, list[str], str]:
        client = Client(kamailio.tcp_port, "msrp", chunk_size=8192)
        reader, client.writer = await asyncio.open_connection("127.0.0.1", kamailio.tcp_port)
        ids, nickname = _queue_frames(client)

        async def pump() -> None:
            while data := await reader.read(65536):
                client.feed(data)

        task = asyncio.ensure_future(pump())
        await _exchange(client, 6)
        task.cancel()
        client.writer.close()
        return client, ids, nickname

    client, ids, nickname = asyncio.run(scenario())
    _check(client, ids, nickname, kamailio)


def test_kamailio_answers_our_frames_over_tls(kamailio: KamailioMsrp, tmp_path: Path) -> None:
    der = certificate_der(kamailio.cert.read_bytes())
    expected = [SdpFingerprint("sha-256", hashlib.sha256(der).digest())]

    async def scenario() -> tuple[Client, list[str], str]:
        client = Client(kamailio.tls_port, "msrps", chunk_size=8192)
        context = make_context(*ensure_certificate(tmp_path))
        loop = asyncio.get_running_loop()
        await loop.create_connection(
            lambda: SecureChannel(CertificateTlsEngine(
                context, lambda d: fingerprints_match(d, expected), server_side=False), client),
            "127.0.0.1", kamailio.tls_port,
        )  # fmt: skip
        async with asyncio.timeout(10):
            await client.opened.wait()
        assert client.channel is not None and client.channel.open
        assert client.channel.version in ("TLSv1.2", "TLSv1.3")
        ids, nickname = _queue_frames(client)
        await _exchange(client, 6)
        client.channel.close()
        return client, ids, nickname

    client, ids, nickname = asyncio.run(scenario())
    _check(client, ids, nickname, kamailio)


def test_a_wrong_end_line_gets_no_answer(kamailio: KamailioMsrp) -> None:
    """The peer's own negative check: a broken frame is never answered 200."""
    good = MsrpConnection()
    local = MsrpUri.parse("msrp://127.0.0.1:45123/mrfclient1;tcp")
    good.bind(local, (MsrpUri.parse(f"msrp://127.0.0.1:{kamailio.tcp_port}/k;tcp"),))
    good.send_message(local, "text/plain", b"hello", 0.0)
    frame = good.data_to_send()
    broken = re.sub(rb"-------(\w+)\$", rb"-------XX\1$", frame)
    with socket.create_connection(("127.0.0.1", kamailio.tcp_port), timeout=5) as sock:
        sock.sendall(broken)
        sock.settimeout(1.0)
        time.sleep(0.5)
        try:
            answer = sock.recv(4096)
        except TimeoutError:
            answer = b""
    assert b" 200 " not in answer
