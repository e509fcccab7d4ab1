"""pcap files for tshark, written here, and tshark run on them.

tshark dissects packets, not bare messages: :func:`tshark_fields` wraps one
message in a UDP datagram or TCP segment between two loopback ports and forces
the dissector onto the port (``-d``, Decode As).  tshark 4.0 cannot put the
``msrp`` or ``bfcp`` dissectors under TLS, so :func:`tls_stream_to_pcap`
turns one decrypted TLS stream of a capture into plain TCP segments, which
those dissectors then decode.

Packets are raw IPv4 (LINKTYPE_RAW, no link layer) in the classic pcap format
(microsecond timestamps), with correct IPv4 and UDP/TCP checksums.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

LINKTYPE_RAW = 101
LOOPBACK = bytes([127, 0, 0, 1])
CLIENT_PORT = 50000  # the other end of every stream written here


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_packet(
    protocol: str, source_port: int, target_port: int, payload: bytes, *,
    seq: int = 0, ack: int = 0, ident: int = 0,
) -> bytes:  # fmt: skip
    """An IPv4 packet 127.0.0.1 → 127.0.0.1 carrying ``payload`` over ``udp`` or ``tcp``.

    TCP segments have PSH+ACK set and the given sequence/acknowledgement numbers.
    """
    if protocol == "udp":
        number = 17
        header = struct.pack("!HHHH", source_port, target_port, 8 + len(payload), 0)
    elif protocol == "tcp":
        number = 6
        header = struct.pack("!HHIIBBHHH", source_port, target_port, seq, ack,
                             5 << 4, 0x18, 65535, 0, 0)  # fmt: skip
    else:
        raise ValueError(f"protocol {protocol!r}: udp or tcp")
    segment = header + payload
    pseudo = LOOPBACK + LOOPBACK + struct.pack("!BBH", 0, number, len(segment))
    checksum = _checksum(pseudo + segment) or 0xFFFF
    offset = 6 if protocol == "udp" else 16
    segment = segment[:offset] + struct.pack("!H", checksum) + segment[offset + 2 :]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), ident & 0xFFFF, 0, 64,
                     number, 0, LOOPBACK, LOOPBACK)  # fmt: skip
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + segment


def write_pcap(path: Path, packets: Iterable[bytes]) -> Path:
    """A pcap file of ``packets`` (raw IPv4), one per millisecond."""
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
        for number, packet in enumerate(packets):
            out.write(struct.pack("<IIII", 0, number * 1000, len(packet), len(packet)) + packet)
    return path


def write_tcp_stream(path: Path, chunks: Iterable[tuple[int, bytes]], port: int) -> Path:
    """A pcap of one TCP connection CLIENT_PORT ↔ ``port``, one segment per chunk.

    ``chunks`` are ``(direction, data)``: direction 0 is client → ``port``, 1 the
    answer.  Sequence numbers run on, so tshark sees one consistent stream.
    """
    ends = [(CLIENT_PORT, port), (port, CLIENT_PORT)]
    seq = [1000, 9000]
    packets = []
    for number, (direction, data) in enumerate(chunks):
        source, target = ends[direction]
        packets.append(ipv4_packet("tcp", source, target, data, seq=seq[direction],
                                   ack=seq[1 - direction], ident=number))  # fmt: skip
        seq[direction] += len(data)
    return write_pcap(path, packets)


def _tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark not found: install the Debian package tshark", pytrace=False)
    return path


def tshark_fields(
    message: bytes, dissector: str, fields: Sequence[str], *, transport: str = "udp",
    port: int = 40000, options: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """The ``-T fields`` values tshark's ``dissector`` gives ``message`` (its last line).

    ``options`` go to tshark as they are (e.g. ``-E occurrence=f``).
    """
    packet = ipv4_packet(transport, CLIENT_PORT, port, message)
    with tempfile.TemporaryDirectory(prefix="tshark-") as directory:
        pcap = write_pcap(Path(directory) / "message.pcap", [packet])
        argv = [_tshark(), "-r", str(pcap), "-d", f"{transport}.port=={port},{dissector}"]
        argv += ["-T", "fields", *options]
        for field in fields:
            argv += ["-e", field]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip("\n").splitlines()
    assert lines, f"tshark printed nothing for {dissector}: {result.stderr}"
    return lines[-1].split("\t")


def tls_stream_to_pcap(capture: Path, keylog: Path, stream: int, out: Path, port: int) -> Path:
    """TLS stream ``stream`` of ``capture``, decrypted with ``keylog``, as plain TCP to ``port``.

    ``tshark -z follow,tls,raw`` prints the decrypted records, one hex line per
    record, the answering side's lines indented by a tab.
    """
    argv = [_tshark(), "-r", str(capture), "-o", f"tls.keylog_file:{keylog}", "-q",
            "-z", f"follow,tls,raw,{stream}"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    chunks = []
    for line in result.stdout.splitlines():
        text = line.strip()
        if not text or set(text) == {"="} or ":" in text:
            continue  # blank, the "=====" rulers and the "Follow: ..." / "Node N: ..." header
        chunks.append((1 if line.startswith("\t") else 0, bytes.fromhex(text)))
    return write_tcp_stream(out, chunks, port)


__all__ = [
    "CLIENT_PORT",
    "ipv4_packet",
    "tls_stream_to_pcap",
    "tshark_fields",
    "write_pcap",
    "write_tcp_stream",
]
