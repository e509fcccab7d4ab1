"""TLS-PSK contexts (decision (d)) against each other, ``openssl s_client/s_server -psk``
and ``tests/peers/tls_psk_client.py``: empty identity, TLS 1.2, plain-PSK AEAD suites only."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import threading

import pytest

from focus.sdp.secret import SecretBytes
from mrf.tls_psk import (
    TlsPskError,
    psk_client_context,
    psk_from_crypto_sessions,
    psk_server_context,
)
from tests.peers import PEERS

PSK = bytes.fromhex("00112233445566778899aabbccddeeff")


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("openssl is missing (a Debian test peer, see the Makefile PEERS)")
    return path


class _Server(threading.Thread):
    """One TLS-PSK accept on an ephemeral loopback port; records the outcome."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.result: tuple[str, str, bytes] | Exception | None = None

    def run(self) -> None:
        try:
            raw, _ = self.listener.accept()
            raw.settimeout(10)
            with self.context.wrap_socket(raw, server_side=True) as tls:
                data = tls.recv(100)
                tls.sendall(b"pong\n")
                self.result = (tls.version() or "", tls.cipher()[0], data)
                try:
                    tls.unwrap()
                except (OSError, ValueError):
                    pass
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.result = exc
        finally:
            self.listener.close()


def test_psk_comes_from_the_tls_crypto_session() -> None:
    sessions = {1: (0, b"s" * 16, b"t" * 14), 2: (241, b"p" * 16, b"")}
    assert psk_from_crypto_sessions(sessions) == b"p" * 16
    assert psk_from_crypto_sessions(sessions, cs_id=2) == b"p" * 16
    with pytest.raises(TlsPskError):
        psk_from_crypto_sessions(sessions, cs_id=1)
    with pytest.raises(TlsPskError):
        psk_from_crypto_sessions({1: (0, b"s", b"")})


def test_dhe_and_null_suites_are_refused() -> None:
    for ciphers in ("DHE-PSK-AES128-GCM-SHA256", "ECDHE-PSK-CHACHA20-POLY1305", "PSK-NULL-SHA256"):
        with pytest.raises(TlsPskError):
            psk_server_context(PSK, ciphers=ciphers)


def test_our_client_and_server_with_an_empty_identity() -> None:
    seen: list[str | None] = []
    server = _Server(psk_server_context(lambda identity: seen.append(identity) or PSK))
    server.start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with psk_client_context(PSK).wrap_socket(raw) as tls:
            tls.sendall(b"ping\n")
            assert tls.recv(100) == b"pong\n"
    server.join(10)
    assert server.result == ("TLSv1.2", "PSK-AES128-GCM-SHA256", b"ping\n")
    assert seen == [None]  # the empty identity reaches the server as None


def test_wrong_key_fails_the_handshake() -> None:
    server = _Server(psk_server_context(PSK))
    server.start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            psk_client_context(b"\x01" * 16).wrap_socket(raw)
    server.join(10)
    assert isinstance(server.result, ssl.SSLError)


def test_a_held_psk_is_read_per_handshake_and_a_wiped_one_fails() -> None:
    """README "Keys in memory": the context reads the holder at each handshake."""
    held = SecretBytes(PSK)
    for wiped in (False, True):
        if wiped:
            held.wipe()  # the call hung up while its listener was still open
        server = _Server(psk_server_context(held))
        server.start()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            if wiped:
                with pytest.raises(ssl.SSLError):
                    psk_client_context(PSK).wrap_socket(raw)
            else:
                with psk_client_context(SecretBytes(PSK)).wrap_socket(raw) as tls:
                    tls.sendall(b"ping\n")
                    assert tls.recv(100) == b"pong\n"
        server.join(10)
        if wiped:
            assert isinstance(server.result, ssl.SSLError)
        else:
            assert server.result == ("TLSv1.2", "PSK-AES128-GCM-SHA256", b"ping\n")


def _s_client(port: int, psk: bytes, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        _openssl(), "s_client", "-connect", f"127.0.0.1:{port}", "-psk", psk.hex(),
        "-psk_identity", "", "-tls1_2", "-quiet", *extra,
    ]  # fmt: skip
    return subprocess.run(command, input="ping\n", capture_output=True, text=True, timeout=20)


@pytest.mark.interop
def test_openssl_s_client_with_the_tek_completes_a_handshake() -> None:
    server = _Server(psk_server_context(PSK))
    server.start()
    result = _s_client(server.port, PSK)
    server.join(10)
    assert server.result == ("TLSv1.2", "PSK-AES128-GCM-SHA256", b"ping\n"), result.stderr
    assert "pong" in result.stdout


@pytest.mark.interop
def test_openssl_s_client_with_another_key_fails() -> None:
    server = _Server(psk_server_context(PSK))
    server.start()
    result = _s_client(server.port, b"\x42" * 16)
    server.join(10)
    assert isinstance(server.result, ssl.SSLError) and "pong" not in result.stdout


@pytest.mark.interop
def test_openssl_s_client_offering_only_dhe_psk_is_refused() -> None:
    server = _Server(psk_server_context(PSK))
    server.start()
    result = _s_client(
        server.port, PSK, "-cipher", "DHE-PSK-AES128-GCM-SHA256:ECDHE-PSK-CHACHA20-POLY1305"
    )
    server.join(10)
    assert isinstance(server.result, ssl.SSLError) and "pong" not in result.stdout


@pytest.mark.interop
def test_our_client_against_openssl_s_server() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    command = [
        _openssl(), "s_server", "-accept", f"127.0.0.1:{port}", "-nocert", "-psk", PSK.hex(),
        "-cipher", "PSK-AES128-GCM-SHA256", "-tls1_2", "-naccept", "1", "-quiet",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            for _ in range(100):
                try:
                    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                    break
                except ConnectionRefusedError:
                    threading.Event().wait(0.05)
            else:
                pytest.fail("openssl s_server did not start")
            with raw, psk_client_context(PSK).wrap_socket(raw) as tls:
                assert tls.version() == "TLSv1.2" and tls.cipher()[0] == "PSK-AES128-GCM-SHA256"
                tls.sendall(b"ping\n")
                assert proc.stdout is not None
                assert proc.stdout.readline() == "ping\n"
        finally:
            proc.kill()


@pytest.mark.interop
def test_separate_psk_client_with_empty_identity() -> None:
    """A client sharing no code with ``mrf.tls_psk``, in its own process, gets in."""
    server = _Server(psk_server_context(PSK))
    server.start()
    command = [
        sys.executable, str(PEERS / "tls_psk_client.py"), "--tls", "1.2",
        "--port", str(server.port), "--psk", PSK.hex(), "--identity", "",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=20)
    server.join(10)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "client ok: TLSv1.2 PSK-AES128-GCM-SHA256 pong" in result.stdout
    assert server.result == ("TLSv1.2", "PSK-AES128-GCM-SHA256", b"ping\n"), server.result
