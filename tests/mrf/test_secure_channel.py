"""TLS channels authenticated by SDP fingerprints (mrf.secure_channel over
mrf.tls_engine.CertificateTlsEngine), in memory.

Two :class:`SecureChannel` protocols are joined by an in-memory transport pair
on a real event loop (no sockets): both TLS roles, the RFC 8122 fingerprint
check, and the TS 33.328 §5.3 policy (TLS 1.2+, AEAD suites, never NULL,
export or SHA-1 suites).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from OpenSSL import SSL

from focus.sdp.attributes import SdpFingerprint, fingerprints_match
from mrf.secure_channel import SecureChannel
from mrf.tls import certificate_der, ensure_certificate
from mrf.tls_engine import CertificateTlsEngine, make_context


def cert_channel(
    context: SSL.Context, app: App, verify: Callable[[bytes], bool], *, server_side: bool
) -> SecureChannel:
    return SecureChannel(CertificateTlsEngine(context, verify, server_side=server_side), app)


def fingerprint_matches(der: bytes, prints: list[tuple[str, str]]) -> bool:
    """The one rule (focus.sdp.attributes.fingerprints_match) on ``(hash, hex)`` pairs."""
    return fingerprints_match(der, [SdpFingerprint.parse(f"{h} {v}") for h, v in prints])


def colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory byte pipe; records everything written."""

    def __init__(self) -> None:
        super().__init__()
        self.peer: SecureChannel | None = None
        self.protocol: SecureChannel | None = None
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing:
            return
        self.written += data
        if self.peer is not None:
            asyncio.get_running_loop().call_soon(self.peer.data_received, bytes(data))

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        loop = asyncio.get_running_loop()
        if self.protocol is not None:
            loop.call_soon(self.protocol.connection_lost, None)
        if self.peer is not None:
            loop.call_soon(self.peer.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


class App:
    """Records what the channel hands to the protocol above it."""

    def __init__(self) -> None:
        self.opened = 0
        self.data = bytearray()
        self.closed: list[str | None] = []

    def channel_open(self, channel: SecureChannel) -> None:
        self.opened += 1

    def channel_data(self, channel: SecureChannel, data: bytes) -> None:
        self.data += data

    def channel_closed(self, channel: SecureChannel, reason: str | None) -> None:
        self.closed.append(reason)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    return {
        name: ensure_certificate(tmp_path_factory.mktemp(name)) for name in ("focus", "ue", "eve")
    }


def der_of(pair: tuple[Path, Path]) -> bytes:
    return certificate_der(pair[0].read_bytes())


def verifier_for(der: bytes, hash_name: str = "sha-256") -> Callable[[bytes], bool]:
    digest = hashlib.new(hash_name.replace("-", ""), der).digest()
    return lambda seen: fingerprint_matches(seen, [(hash_name, colon_hex(digest))])


async def _run_pair(
    server_ctx: SSL.Context,
    client_ctx: SSL.Context,
    server_verify: Callable[[bytes], bool],
    client_verify: Callable[[bytes], bool],
    *,
    client_sends: bytes = b"",
    server_sends: bytes = b"",
) -> tuple[SecureChannel, SecureChannel, App, App, MemoryTransport, MemoryTransport]:
    server_app, client_app = App(), App()
    server = cert_channel(server_ctx, server_app, server_verify, server_side=True)
    client = cert_channel(client_ctx, client_app, client_verify, server_side=False)
    to_client, to_server = MemoryTransport(), MemoryTransport()
    to_client.protocol, to_client.peer = server, client  # the server's transport
    to_server.protocol, to_server.peer = client, server  # the client's transport
    server.connection_made(to_client)
    client.connection_made(to_server)
    for _ in range(200):
        await asyncio.sleep(0)
        if client.open and client_sends:
            client.write(client_sends)
            client_sends = b""
        if server.open and server_sends:
            server.write(server_sends)
            server_sends = b""
    return server, client, server_app, client_app, to_client, to_server


def run_pair(*args: Any, **kwargs: Any) -> Any:
    return asyncio.run(_run_pair(*args, **kwargs))


def test_handshake_both_roles_and_data_both_ways(certs: dict[str, tuple[Path, Path]]) -> None:
    server_ctx, client_ctx = make_context(*certs["focus"]), make_context(*certs["ue"])
    big = bytes(range(256)) * 1000  # more than one TLS record
    server, client, server_app, client_app, _, _ = run_pair(
        server_ctx, client_ctx, verifier_for(der_of(certs["ue"])),
        verifier_for(der_of(certs["focus"])), client_sends=big, server_sends=b"pong",
    )  # fmt: skip
    assert server.open and client.open and server_app.opened == client_app.opened == 1
    assert server.peer_certificate == der_of(certs["ue"])
    assert client.peer_certificate == der_of(certs["focus"])
    assert bytes(server_app.data) == big and bytes(client_app.data) == b"pong"
    assert server.version in ("TLSv1.2", "TLSv1.3") and client.cipher is not None
    assert any(name in client.cipher for name in ("GCM", "CHACHA20"))
    assert server.peer_address == ("127.0.0.1", 40000)


def test_close_notify_reaches_the_peer(certs: dict[str, tuple[Path, Path]]) -> None:
    async def scenario() -> tuple[App, App]:
        server, client, server_app, client_app, _, _ = await _run_pair(
            make_context(*certs["focus"]), make_context(*certs["ue"]),
            verifier_for(der_of(certs["ue"])), verifier_for(der_of(certs["focus"])),
        )  # fmt: skip
        client.close()
        for _ in range(20):
            await asyncio.sleep(0)
        assert client.closed and server.closed
        return server_app, client_app

    server_app, client_app = asyncio.run(scenario())
    assert server_app.closed and client_app.closed == [None]


@pytest.mark.parametrize("hash_name", ["sha-256", "sha-384", "sha-512"])
def test_fingerprint_hashes(certs: dict[str, tuple[Path, Path]], hash_name: str) -> None:
    der = der_of(certs["ue"])
    digest = hashlib.new(hash_name.replace("-", ""), der).digest()
    assert fingerprint_matches(der, [(hash_name.upper(), colon_hex(digest).lower())])
    assert not fingerprint_matches(der_of(certs["eve"]), [(hash_name, colon_hex(digest))])


def test_several_fingerprints_every_offered_hash_must_match(
    certs: dict[str, tuple[Path, Path]],
) -> None:
    der, other = der_of(certs["ue"]), der_of(certs["eve"])
    good256 = ("sha-256", colon_hex(hashlib.sha256(der).digest()))
    good512 = ("sha-512", colon_hex(hashlib.sha512(der).digest()))
    other256 = ("sha-256", colon_hex(hashlib.sha256(other).digest()))
    other512 = ("sha-512", colon_hex(hashlib.sha512(other).digest()))
    # one of several certificates (RFC 8122 §5: any value of a hash may be the one)
    assert fingerprint_matches(der, [other256, good256])
    assert fingerprint_matches(der, [other512, good512, other256, good256])
    # every counted hash offered must match: a SHA-256 match does not rescue a SHA-512
    # miss, nor the other way round (stricter than RFC 8122 §5's most-preferred-hash rule)
    assert not fingerprint_matches(der, [good256, other512])
    assert not fingerprint_matches(der, [other512, good512, other256])
    # hashes weaker than SHA-256 are ignored (a wrong SHA-1 does not refuse), an empty
    # list never matches
    sha1 = ("sha-1", colon_hex(hashlib.sha1(der).digest()))
    md5 = ("md5", colon_hex(hashlib.md5(der).digest()))
    assert not fingerprint_matches(der, [sha1, md5])
    assert fingerprint_matches(der, [sha1, good256])
    wrong_sha1 = ("sha-1", colon_hex(hashlib.sha1(other).digest()))
    assert fingerprint_matches(der, [wrong_sha1, good256])
    assert not fingerprint_matches(der, [])
    assert not fingerprint_matches(der, [("sha-256", colon_hex(bytes(32)))])


@pytest.mark.parametrize("bad_side", ["server", "client"])
def test_mismatch_closes_before_any_application_byte(
    certs: dict[str, tuple[Path, Path]], bad_side: str
) -> None:
    """The side that sees a wrong certificate never opens; nothing reaches its app."""
    wrong = verifier_for(der_of(certs["eve"]))
    right_ue, right_focus = verifier_for(der_of(certs["ue"])), verifier_for(der_of(certs["focus"]))
    server, client, server_app, client_app, to_client, _ = run_pair(
        make_context(*certs["focus"]), make_context(*certs["ue"]),
        wrong if bad_side == "server" else right_ue,
        wrong if bad_side == "client" else right_focus,
        client_sends=b"SECRET-FROM-CLIENT", server_sends=b"SECRET-FROM-SERVER",
    )  # fmt: skip
    refusing, refusing_app = (server, server_app) if bad_side == "server" else (client, client_app)
    assert refusing.closed and not refusing.open and refusing.peer_certificate is None
    assert refusing_app.opened == 0 and not refusing_app.data
    assert refusing_app.closed and "fingerprint" in str(refusing_app.closed[0])
    # the other side may have finished its handshake, but no byte it wrote was delivered
    assert b"SECRET" not in bytes(server_app.data) + bytes(client_app.data)
    if bad_side == "server":
        assert not client_app.data and b"SECRET-FROM-SERVER" not in to_client.written
    # and the peer is told so by a fatal alert (RFC 8446 §6.2), not left with a silent close
    other_app = client_app if bad_side == "server" else server_app
    assert other_app.closed and "alert" in str(other_app.closed[0]).lower(), other_app.closed


def test_no_plaintext_on_the_wire(certs: dict[str, tuple[Path, Path]]) -> None:
    marker = b"PLAINTEXT-MARKER-" * 10
    _, _, server_app, _, to_client, to_server = run_pair(
        make_context(*certs["focus"]), make_context(*certs["ue"]),
        verifier_for(der_of(certs["ue"])), verifier_for(der_of(certs["focus"])),
        client_sends=marker, server_sends=marker,
    )  # fmt: skip
    assert bytes(server_app.data) == marker
    assert b"PLAINTEXT-MARKER" not in bytes(to_client.written) + bytes(to_server.written)


def _weak_client(pair: tuple[Path, Path], ciphers: bytes, version: int) -> SSL.Context:
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(version)
    context.set_max_proto_version(version)
    context.set_cipher_list(ciphers)
    context.use_certificate_file(str(pair[0]))
    context.use_privatekey_file(str(pair[1]))
    context.set_verify(SSL.VERIFY_NONE, lambda *args: True)
    return context


def _refused(certs: dict[str, tuple[Path, Path]], ciphers: bytes, version: int) -> App:
    server, client, server_app, client_app, _, _ = run_pair(
        make_context(*certs["focus"]), _weak_client(certs["ue"], ciphers, version),
        lambda der: True, lambda der: True, client_sends=b"x",
    )  # fmt: skip
    assert server.closed and not server.open and server_app.opened == 0
    assert not server_app.data and not client.open
    assert server_app.closed and "handshake failed" in str(server_app.closed[0])
    return server_app


def test_tls_1_1_is_refused(certs: dict[str, tuple[Path, Path]]) -> None:
    app = _refused(certs, b"ALL:@SECLEVEL=0", SSL.TLS1_1_VERSION)
    assert "version" in str(app.closed[0]).lower() or "protocol" in str(app.closed[0]).lower()


@pytest.mark.parametrize(
    "ciphers",
    [
        b"ECDHE-ECDSA-NULL-SHA:NULL-SHA256:@SECLEVEL=0",  # NULL encryption
        b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0",  # SHA-1 CBC
        b"ECDHE-ECDSA-AES128-SHA256:AES128-GCM-SHA256:@SECLEVEL=0",  # CBC, no forward secrecy
    ],
)
def test_weak_tls12_suites_are_refused(certs: dict[str, tuple[Path, Path]], ciphers: bytes) -> None:
    _refused(certs, ciphers, SSL.TLS1_2_VERSION)


def test_the_cipher_list_has_only_ecdhe_aead_suites(certs: dict[str, tuple[Path, Path]]) -> None:
    connection = SSL.Connection(make_context(*certs["focus"]), None)
    names = connection.get_cipher_list()
    tls12 = [n for n in names if not n.startswith("TLS_")]
    assert tls12 and all(n.startswith("ECDHE-") for n in tls12)
    assert all("GCM" in n or "CHACHA20" in n for n in names)
    assert not [n for n in names if "NULL" in n or "EXP" in n or n.endswith("-SHA")]
    # export suites do not exist at all any more: a client cannot even ask for them
    with pytest.raises(SSL.Error):
        _weak_client(certs["ue"], b"EXPORT", SSL.TLS1_2_VERSION)


def test_a_client_without_certificate_is_refused(certs: dict[str, tuple[Path, Path]]) -> None:
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_verify(SSL.VERIFY_NONE, lambda *args: True)
    server, client, server_app, _, _, _ = run_pair(
        make_context(*certs["focus"]), context, lambda der: True, lambda der: True,
        client_sends=b"x",
    )  # fmt: skip
    assert server.closed and server_app.opened == 0 and not server_app.data


def test_handshake_timeout(certs: dict[str, tuple[Path, Path]], monkeypatch: Any) -> None:
    monkeypatch.setattr("mrf.secure_channel.HANDSHAKE_TIMEOUT", 0.01)

    async def scenario() -> App:
        app = App()
        channel = cert_channel(make_context(*certs["focus"]), app, lambda der: True,
                               server_side=True)  # fmt: skip
        transport = MemoryTransport()
        transport.protocol = channel
        channel.connection_made(transport)
        await asyncio.sleep(0.05)
        assert channel.closed and transport.closing
        return app

    assert asyncio.run(scenario()).closed == ["handshake timeout"]


def test_garbage_instead_of_tls(certs: dict[str, tuple[Path, Path]]) -> None:
    async def scenario() -> App:
        app = App()
        channel = cert_channel(make_context(*certs["focus"]), app, lambda der: True,
                               server_side=True)  # fmt: skip
        transport = MemoryTransport()
        transport.protocol = channel
        channel.connection_made(transport)
        channel.data_received(b"MSRP abc SEND\r\nTo-Path: x\r\n\r\n" * 3)
        channel.data_received(b"more after the failure")
        await asyncio.sleep(0)
        return app

    app = asyncio.run(scenario())
    assert app.opened == 0 and not app.data and "handshake failed" in str(app.closed[0])
