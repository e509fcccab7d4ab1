"""Floor control over BFCP/TLS: two ``mrf ue`` participants and a chair against ``mrf serve``.

Judged by the ``floor`` events the clients print, and by tshark's bfcp
dissector and libre's codec (``tests/peers/bfcp_codec.c``) decoding every BFCP
message of the run from the capture decrypted with the key log (each TLS
stream rewritten as plain TCP by :func:`tests.peers.pcap.tls_stream_to_pcap`).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.peers import build_bfcp_codec
from tests.peers.pcap import CLIENT_PORT, tls_stream_to_pcap, write_tcp_stream

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
    "floor",
    ("sip:alice@127.0.0.1", "sip:bob@127.0.0.1", "sip:chair@127.0.0.1,chair",
     "sip:eve@127.0.0.1"),
)  # fmt: skip
type Event = dict[str, object]


class Ue(UeJoin):
    """``mrf ue join --bfcp`` to the floor room."""

    def __init__(self, artifacts: Artifacts, server: MrfServer, who: str, *extra: str) -> None:
        super().__init__(artifacts, server, "floor", f"sip:{who}@127.0.0.1", "--audio",
                         "--bfcp", "--duration", "60", *extra)  # fmt: skip

    def floor_events(self, **match: object) -> list[Event]:
        return [e for e in self.events("floor") if all(e.get(k) == v for k, v in match.items())]

    def wait_floor(self, timeout: float = 15, **match: object) -> Event:
        found = wait_for(lambda: self.floor_events(**match), timeout)
        assert found, f"no floor event {match}: {self.events()}\n{self.err.read_text()[-2000:]}"
        return self.floor_events(**match)[-1]


@pytest.fixture(scope="module")
def bfcp_codec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """libre's BFCP codec (tests/peers/bfcp_codec.c), built with gcc + libre-dev into tmp."""
    return build_bfcp_codec(tmp_path_factory.mktemp("bfcp-codec"))


def _server(artifacts: Artifacts, keylog: Path) -> MrfServer:
    server = MrfServer(artifacts.directory / "server")
    artifacts.logs["server stderr"] = server.log
    with server.config.open("a") as config:
        config.write(f'[tls]\nkeylog_file = "{keylog}"\n')
    server.create_conference(ROOM)
    server.start()
    return server


def _holders(event: Event) -> dict[object, object]:
    requests = event["requests"]
    assert isinstance(requests, list)
    return {r["user"]: r["status"] for r in requests}


def test_floor_control_with_a_chair(artifacts: Artifacts, bfcp_codec: Path) -> None:
    tshark = require_peer("tshark")
    keylog = artifacts.directory / "keys.log"
    pcap = artifacts.directory / "bfcp.pcap"
    capture = BackgroundProcess([tshark, "-i", "lo", "-f", "tcp", "-w", str(pcap)],
                                artifacts.path("tshark-capture.log"))  # fmt: skip
    wait_for(lambda: "Capturing on" in capture.text(), 10)
    server = _server(artifacts, keylog)
    ues: list[Ue] = []
    try:
        chair = Ue(artifacts, server, "chair", "--keylog-file", str(keylog))
        alice = Ue(artifacts, server, "alice", "--keylog-file", str(keylog))
        bob = Ue(artifacts, server, "bob", "--keylog-file", str(keylog))
        ues = [chair, alice, bob]
        for ue in ues:
            ue.wait_floor(status="hello-ack")
            ue.wait_floor(status="floor-status")
        alice.command("floor request")
        pending = alice.wait_floor(status="pending", notification=False)
        chair.command(f"floor accept {pending['request_id']}")
        chair.wait_floor(status="chair-ack")
        alice.wait_floor(status="granted", notification=True)
        bob.command("floor request")
        waiting = bob.wait_floor(status="pending", notification=False)
        chair.command(f"floor accept {waiting['request_id']}")
        assert bob.wait_floor(status="accepted")["queue_position"] == 1
        alice.command("floor release")
        alice.wait_floor(status="released")
        bob.wait_floor(status="granted", notification=True)
        # a non-chair's ChairAction is refused and changes nothing
        alice.command(f"floor revoke {waiting['request_id']}")
        assert alice.wait_floor(status="error")["code"] == 5
        chair.command(f"floor revoke {waiting['request_id']}")
        bob.wait_floor(status="revoked", notification=True)
        alice.command("floor request")
        denied = alice.wait_floor(status="pending", notification=False, request_id=3)
        chair.command(f"floor deny {denied['request_id']}")
        alice.wait_floor(status="denied")
        # every party saw the floor changes (FloorStatus to FloorQuery subscribers)
        for ue in ues:
            seen = {(str(u), str(s)) for e in ue.floor_events(status="floor-status")
                    for u, s in _holders(e).items()}  # fmt: skip
            for who, status in (("alice", "granted"), ("bob", "granted"), ("bob", "revoked"),
                                ("alice", "released"), ("alice", "denied")):  # fmt: skip
                assert (f"sip:{who}@127.0.0.1", status) in seen, (who, status, seen)
        # a participant who hangs up loses its floor
        bob.command("floor request")
        again = bob.wait_floor(status="pending", notification=False, request_id=4)
        chair.command(f"floor grant {again['request_id']}")
        bob.wait_floor(status="granted", request_id=4)
        assert bob.finish() == 0
        last = chair.wait_floor(status="floor-status", timeout=15)
        wait_for(lambda: ("sip:bob@127.0.0.1", "released") in {
            (str(u), str(s)) for e in chair.floor_events(status="floor-status")
            for u, s in _holders(e).items()}, 10)  # fmt: skip
        assert last
        for ue in (chair, alice):
            assert ue.finish() == 0, ue.err.read_text()[-2000:]
            assert not [e for e in ue.events() if e["event"] == "error"], ue.events()
    finally:
        for ue in ues:
            ue.finish()
        finish_server(server)
        time.sleep(0.5)
        capture.stop()
    _check_decoders(artifacts, pcap, keylog, bfcp_codec)


def _bfcp_streams(artifacts: Artifacts, pcap: Path, keylog: Path) -> list[int]:
    result = run_bounded(["tshark", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}", "-T",
                          "fields", "-e", "tcp.stream", "-Y", "tls.app_data and not sip"],
                         artifacts.path("tshark-streams.log"), timeout=60)  # fmt: skip
    return sorted({int(s) for s in result.stdout.split()})


def _check_decoders(artifacts: Artifacts, pcap: Path, keylog: Path, codec: Path) -> None:
    primitives: list[int] = []
    for stream in _bfcp_streams(artifacts, pcap, keylog):
        plain = artifacts.directory / f"plain{stream}.pcap"
        tls_stream_to_pcap(pcap, keylog, stream, plain, 2856)
        # tshark 4.0's bfcp dissector runs past a message's end into the next one
        # in the same TCP segment (each message alone decodes cleanly; checked),
        # so it gets one message per segment: framed by the header's Payload Length.
        split = artifacts.directory / f"split{stream}.pcap"
        _split_pcap(artifacts, plain, split, stream)
        fields = run_bounded(["tshark", "-r", str(split), "-d", "tcp.port==2856,bfcp", "-T",
                              "fields", "-e", "bfcp.primitive", "-e", "_ws.malformed",
                              "-e", "_ws.expert.severity"],
                             artifacts.path(f"decode{stream}.log"), timeout=60)  # fmt: skip
        for line in fields.stdout.splitlines():
            cells = (line.split("\t") + ["", "", ""])[:3]
            assert not cells[1], f"malformed BFCP in stream {stream}: {line}"
            assert "error" not in cells[2].lower(), line
            primitives += [int(p) for p in cells[0].split(",") if p]
        _check_libre(artifacts, plain, codec, stream)
    assert {1, 2, 4, 7, 8, 9, 10, 11, 12, 13} <= set(primitives), sorted(set(primitives))


def _split_pcap(artifacts: Artifacts, plain: Path, out: Path, stream: int) -> None:
    """Rewrite ``plain`` (both directions) with one BFCP message per TCP segment."""
    records = run_bounded(["tshark", "-r", str(plain), "-T", "fields", "-e", "tcp.srcport",
                           "-e", "tcp.payload"],
                          artifacts.path(f"records{stream}.log"), timeout=60)  # fmt: skip
    streams: dict[int, bytes] = {}
    order: list[tuple[int, bytes]] = []
    for line in records.stdout.splitlines():
        port, _, payload = line.partition("\t")
        if not payload:
            continue
        direction = int(port != str(CLIENT_PORT))
        data = streams.get(direction, b"") + bytes.fromhex(payload)
        while len(data) >= 12 and len(data) >= 12 + 4 * int.from_bytes(data[2:4]):
            size = 12 + 4 * int.from_bytes(data[2:4])
            order.append((direction, data[:size]))
            data = data[size:]
        streams[direction] = data
    write_tcp_stream(out, order, 2856)


def _check_libre(artifacts: Artifacts, plain: Path, codec: Path, stream: int) -> None:
    """libre decodes each direction's byte stream, message by message."""
    for direction in ("0", "1"):
        log = artifacts.path(f"payload{stream}-{direction}.log")
        sent_by = f"tcp.srcport {'==' if direction == '0' else '!='} {CLIENT_PORT}"
        data = run_bounded(["tshark", "-r", str(plain), "-T", "fields", "-e", "tcp.payload",
                            "-Y", sent_by], log, timeout=60)  # fmt: skip
        hex_stream = "".join(data.stdout.split())
        if not hex_stream:
            continue
        result = subprocess.run([str(codec), "decode", "-"], input=hex_stream + "\n",
                                capture_output=True, text=True, timeout=30,
                                check=False)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "message 1:" in result.stdout


def test_wrong_fingerprint_never_gets_a_bfcp_answer(artifacts: Artifacts) -> None:
    server = _server(artifacts, artifacts.directory / "keys.log")
    try:
        eve = Ue(artifacts, server, "eve", "--bad-fingerprint")
        assert eve.finish() == 1
        assert not eve.floor_events(status="hello-ack")
        assert not [e for e in eve.floor_events() if e.get("status") not in ("connected", "closed")]
        assert [e for e in eve.events() if e["event"] == "error"], eve.events()
    finally:
        finish_server(server)


def test_the_focus_connects_to_a_passive_participant(artifacts: Artifacts) -> None:
    """``mrf ue --setup passive``: the ue listens, ``mrf serve`` connects as TLS client."""
    server = _server(artifacts, artifacts.directory / "keys.log")
    try:
        bob = Ue(artifacts, server, "bob", "--setup", "passive")
        connected = bob.wait_floor(status="connected")
        assert connected["focus_connected"] is True, connected
        bob.wait_floor(status="hello-ack")
        bob.command("floor request")
        bob.wait_floor(status="granted")
        assert bob.finish() == 0, bob.err.read_text()[-2000:]
        assert not [e for e in bob.events() if e["event"] == "error"], bob.events()
    finally:
        finish_server(server)
