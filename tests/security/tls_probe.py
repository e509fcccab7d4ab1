"""TLS probes: ``openssl s_client`` runs and a hand-made ClientHello (RFC 5246 §7.4.1.2).

:func:`s_client` runs the oracle peer bounded in time (``-msg`` prints every
handshake message and alert it sees); :func:`alerts_of` reads the alerts it
received.  OpenSSL 3 has no export suites left (``openssl ciphers EXP``: "no
cipher match"), so an EXPORT offer is made by :func:`offer_suites`: a TLS 1.2
ClientHello offering only the given cipher suite numbers, and the first
record of the answer.
"""

from __future__ import annotations

import re
import secrets
import socket
import struct
import subprocess
from dataclasses import dataclass

import pytest

from tests.interop.harness import require_peer

# RFC 2246 App. A.5 / RFC 4346 App. A.5: every TLS_*_EXPORT_* suite
EXPORT_SUITES = (0x0003, 0x0006, 0x0008, 0x000B, 0x000E, 0x0011, 0x0014, 0x0017, 0x0019)
ALERTS = {20: "bad_record_mac", 40: "handshake_failure", 42: "bad_certificate",
          47: "illegal_parameter", 48: "unknown_ca", 51: "decrypt_error",
          70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
          115: "unknown_psk_identity"}  # fmt: skip
_RECEIVED_ALERT = re.compile(r"<<< TLS [\d.]+, Alert \[length 0002\], (\w+) (\w+)")
_SERVER_FINISHED = re.compile(r"<<< TLS [\d.]+, Handshake \[length [0-9a-f]+\], Finished")


def s_client(host: str, port: int, *args: str, timeout: float = 20.0) -> str:
    """``openssl s_client -connect HOST:PORT -msg ARGS`` with empty stdin: its output."""
    openssl = require_peer("openssl")
    argv = [openssl, "s_client", "-connect", f"{host}:{port}", "-msg", *args]
    try:
        result = subprocess.run(argv, input="", capture_output=True, text=True,
                                timeout=timeout, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"openssl s_client did not finish within {timeout} s: {argv}", pytrace=False)
    return result.stdout + result.stderr


def alerts_of(output: str) -> list[tuple[str, str]]:
    """The alerts s_client received, as (level, description)."""
    return _RECEIVED_ALERT.findall(output)


def server_finished(output: str) -> bool:
    """s_client received the server's Finished: the handshake completed (RFC 5246 §7.4.9).

    (s_client prints ``Cipher is ...`` from the ServerHello even when the
    handshake fails later, so that line alone proves nothing.)
    """
    return bool(_SERVER_FINISHED.search(output))


@dataclass(frozen=True)
class TlsRecord:
    """The first record the server answered (RFC 5246 §6.2.1), or what ended the line."""

    content_type: int | None
    payload: bytes

    def describe(self) -> str:
        if self.content_type == 21 and len(self.payload) == 2:
            level = {1: "warning", 2: "fatal"}.get(self.payload[0], str(self.payload[0]))
            return f"TLS alert {level} {ALERTS.get(self.payload[1], self.payload[1])}"
        if self.content_type == 22:
            return f"TLS handshake message type {self.payload[:1].hex()}"
        return "connection closed without a TLS record"


def offer_suites(host: str, port: int, suites: tuple[int, ...], timeout: float = 10.0) -> TlsRecord:
    """Send a TLS 1.2 ClientHello offering only ``suites``; the server's first record."""
    extensions = (
        _extension(10, struct.pack("!H", 6) + struct.pack("!HHH", 23, 24, 29))  # supported_groups
        + _extension(11, b"\x01\x00")  # ec_point_formats: uncompressed
        + _extension(
            13, struct.pack("!H", 8) + struct.pack("!HHHH", 0x0401, 0x0501, 0x0403, 0x0804)
        )
    )
    body = (
        b"\x03\x03" + secrets.token_bytes(32) + b"\x00"  # client_version, random, no session
        + struct.pack("!H", 2 * len(suites)) + b"".join(struct.pack("!H", s) for s in suites)
        + b"\x01\x00"  # compression: null
        + struct.pack("!H", len(extensions)) + extensions
    )  # fmt: skip
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    record = b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(record)
        head = _read(sock, 5)
        if len(head) < 5:
            return TlsRecord(None, head)
        return TlsRecord(head[0], _read(sock, struct.unpack("!H", head[3:5])[0]))


def _extension(kind: int, data: bytes) -> bytes:
    return struct.pack("!HH", kind, len(data)) + data


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data
