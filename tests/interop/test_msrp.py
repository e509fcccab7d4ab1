"""Conference chat over MSRP/TLS: ``mrf ue`` participants against ``mrf serve``.

Judged by what the participants print, what openssl sees, and by tshark
decoding every MSRP frame of the run from a capture decrypted with the key
log (each TLS stream rewritten as plain TCP by
:func:`tests.peers.pcap.tls_stream_to_pcap`), with no malformed or error markers.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest

from tests.peers.pcap import tls_stream_to_pcap

from .conftest import finish_server
from .harness import (
    Artifacts,
    BackgroundProcess,
    Conference,
    MrfServer,
    UeJoin,
    require_peer,
    run_bounded,
    wait_for,
)

pytestmark = pytest.mark.interop

ROOM = Conference(
    "chat", ("sip:alice@127.0.0.1", "sip:bob@127.0.0.1", "sip:carol@127.0.0.1", "sip:eve@127.0.0.1")
)
BIG = ("ünïcødé ☃ " * 80000)[:700000]  # > 1 MB of UTF-8


class Ue(UeJoin):
    """``mrf ue join`` to the chat room with MSRP."""

    def __init__(self, artifacts: Artifacts, server: MrfServer, who: str, *extra: str) -> None:
        super().__init__(artifacts, server, "chat", f"sip:{who}@127.0.0.1", "--msrp",
                         "--duration", "40", *extra)  # fmt: skip

    def wait_event(self, kind: str, count: int = 1, timeout: float = 20) -> list[dict[str, object]]:
        found = wait_for(lambda: len(self.events(kind)) >= count, timeout)
        assert found, f"no {kind} event: {self.events()}\n{self.err.read_text()[-2000:]}"
        return self.events(kind)


def _server(artifacts: Artifacts, keylog: Path) -> MrfServer:
    server = MrfServer(artifacts.directory / "server")
    artifacts.logs["server stderr"] = server.log
    with server.config.open("a") as config:
        config.write(f'[tls]\nkeylog_file = "{keylog}"\n')
    server.create_conference(ROOM)
    server.start()
    return server


def test_participants_chat_over_tls_and_tshark_decodes_every_frame(artifacts: Artifacts) -> None:
    tshark = require_peer("tshark")
    keylog = artifacts.directory / "keys.log"
    pcap = artifacts.directory / "msrp.pcap"
    capture = BackgroundProcess([tshark, "-i", "lo", "-f", "tcp", "-w", str(pcap)],
                                artifacts.path("tshark-capture.log"))  # fmt: skip
    wait_for(lambda: "Capturing on" in capture.text(), 10)
    server = _server(artifacts, keylog)
    ues: list[Ue] = []
    try:
        alice = Ue(artifacts, server, "alice", "--keylog-file", str(keylog))
        bob = Ue(artifacts, server, "bob", "--transport", "tls", "--proxy",
                 f"127.0.0.1:{server.tls_port}", "--keylog-file", str(keylog))  # fmt: skip
        carol = Ue(artifacts, server, "carol", "--transport", "tcp", "--nickname", "Carö")
        ues = [alice, bob, carol]
        for ue in ues:
            ue.wait_event("joined")
        time.sleep(0.5)
        alice.command("say Grüße aus Köln, 東京 ☃")
        alice.command("say " + BIG)
        bob.command("say hi from bob")
        carol.command("say-to sip:bob@127.0.0.1 private for bob only")
        for ue, expected in ((bob, 3), (carol, 3)):
            ue.wait_event("chat", expected, timeout=30)
        bob_chats = bob.wait_event("chat", 3)
        texts = {str(e["text"]) for e in bob_chats}
        assert "Grüße aus Köln, 東京 ☃" in texts and "private for bob only" in texts
        big = [e for e in bob_chats if e["size"] == len(BIG.encode())]
        assert big and big[0]["sha256"] == hashlib.sha256(BIG.encode()).hexdigest()
        assert big[0]["from"] == "sip:alice@127.0.0.1"
        private = [e for e in bob_chats if e["text"] == "private for bob only"][0]
        assert private["private"] is True and private["nickname"] == "Carö"
        carol_texts = [str(e["text"]) for e in carol.wait_event("chat", 3)]
        assert "private for bob only" not in carol_texts and "hi from bob" in carol_texts
        assert not [
            e
            for e in alice.events()
            if e["event"] == "chat" and e["text"] == "private for bob only"
        ]
        for ue in ues:
            assert ue.finish() == 0, ue.err.read_text()[-2000:]
            assert ue.events()[-1]["event"] == "left"
            assert not [e for e in ue.events() if e["event"] == "error"], ue.events()
    finally:
        for ue in ues:
            ue.finish()
        finish_server(server)
        time.sleep(0.5)
        capture.stop()
    _check_tshark(artifacts, pcap, keylog, len(BIG.encode()))


def _msrp_streams(artifacts: Artifacts, pcap: Path, keylog: Path) -> list[int]:
    result = run_bounded(["tshark", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}", "-T",
                          "fields", "-e", "tcp.stream", "-Y", "tls.app_data"],
                         artifacts.path("tshark-streams.log"), timeout=60)  # fmt: skip
    return sorted({int(s) for s in result.stdout.split()})


def _check_tshark(artifacts: Artifacts, pcap: Path, keylog: Path, big_size: int) -> None:
    methods: list[str] = []
    ranges: list[str] = []
    for stream in _msrp_streams(artifacts, pcap, keylog):
        plain = artifacts.directory / f"plain{stream}.pcap"
        tls_stream_to_pcap(pcap, keylog, stream, plain, 2855)
        argv = ["tshark", "-r", str(plain), "-d", "tcp.port==2855,msrp", "-T", "fields"]
        for name in ("msrp.method", "msrp.byte.range", "msrp.status.code", "_ws.malformed",
                     "_ws.expert.severity"):  # fmt: skip
            argv += ["-e", name]
        fields = run_bounded(argv, artifacts.path(f"decode{stream}.log"), timeout=60)
        for line in fields.stdout.splitlines():
            cells = line.split("\t")
            if len(cells) < 5 or not any(cells[:3]):
                continue  # a SIP-over-TLS stream, not MSRP
            assert not cells[3], f"malformed MSRP frame in stream {stream}: {line}"
            assert "error" not in cells[4].lower() and not re.search(
                r"\b(4194304|8388608)\b", cells[4]
            )
            methods += [m for m in cells[0].split(",") if m]
            ranges += [r for r in cells[1].split(",") if r]
    assert {"SEND"} <= set(methods), methods
    assert len([r for r in ranges if r.startswith("1-")]) >= 3, ranges
    # tshark 4.0 dissects one MSRP PDU per segment: count the big message's chunks in the
    # decrypted bytes themselves
    plain = b"".join(p.read_bytes() for p in artifacts.directory.glob("plain*.pcap"))
    starts = {int(m) for m in re.findall(rb"Byte-Range: (\d+)-\d+/\d+", plain)}
    assert len([s for s in starts if s > 1]) >= 32, "the 1 MB message was not chunked"


def test_wrong_fingerprint_is_refused_and_nothing_is_relayed(artifacts: Artifacts) -> None:
    server = _server(artifacts, artifacts.directory / "keys.log")
    try:
        bob = Ue(artifacts, server, "bob")
        bob.wait_event("joined")
        eve = Ue(artifacts, server, "eve", "--bad-fingerprint")
        eve.command("say should never arrive")
        try:
            eve.proc.wait(30)  # she leaves by herself once the focus drops her TLS connection
        finally:
            status = eve.finish()
        assert status == 1
        # TLS 1.3: eve's handshake may finish before the focus checks her certificate,
        # so she may print "joined" first; the connection is then closed under her
        assert [e for e in eve.events() if e["event"] == "error"]
        time.sleep(1)
        assert not [e for e in bob.events() if e["event"] == "chat"]
        assert bob.finish() == 0
        assert "does not match the SDP fingerprint" in server.log_text()
    finally:
        finish_server(server)


def test_null_and_export_suites_fail(artifacts: Artifacts) -> None:
    openssl = require_peer("openssl")
    server = _server(artifacts, artifacts.directory / "keys.log")
    try:
        port = int(re.findall(r"MSRP over TLS listening on [0-9.]+:(\d+)", server.log_text())[0])
        # OpenSSL 3 offers NULL suites only at @SECLEVEL=0 (otherwise it fails on its own
        # side, "no ciphers available", and never reaches the focus); it has no EXPORT
        # suites at all: tests/security/test_ciphers.py sends those by hand
        argv = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2"]
        argv += ["-cipher", "NULL:@SECLEVEL=0", "-msg"]
        result = run_bounded(argv, artifacts.path("s_client.log"), timeout=20)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert ">>> TLS 1.2, Handshake [length" in output, output  # a ClientHello was sent
        assert "alert handshake failure" in output and "ServerHello" not in output, output
    finally:
        finish_server(server)
