"""DTLS-SRTP keying (RFC 5763/5764): two of our endpoints, in memory and on loopback."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sdp.attributes import SdpFingerprint
from mrf.rtp.dtls import (
    DTLS_SRTP_PROFILES,
    DtlsLocalError,
    RtpDtlsCertificate,
    RtpDtlsKeying,
    RtpDtlsSession,
    RtpDtlsState,
)
from mrf.rtp.srtp import SrtpContext, SrtpDirection
from mrf.rtp.stream import RtpStream

CLIENT_CERT = RtpDtlsCertificate.generate()
SERVER_CERT = RtpDtlsCertificate.generate()


def _pair(**kwargs: object) -> tuple[RtpDtlsSession, RtpDtlsSession]:
    client = RtpDtlsSession(
        CLIENT_CERT, client=True, fingerprints=[SERVER_CERT.fingerprint()], **kwargs
    )
    server = RtpDtlsSession(SERVER_CERT, client=False, fingerprints=[CLIENT_CERT.fingerprint()])
    return client, server


def _pump(client: RtpDtlsSession, server: RtpDtlsSession, *, drop_first: bool = False) -> int:
    """Exchange flights until nothing moves; returns the number of datagrams carried."""
    to_server, to_client, carried = client.start(), server.start(), 0
    if drop_first:
        to_server = []
        to_server += client.handle_timeout()  # the timer has not fired yet: nothing
    for _ in range(20):
        if not to_server and not to_client:
            break
        carried += len(to_server) + len(to_client)
        replies = [d for datagram in to_server for d in server.receive(datagram)]
        to_server = [d for datagram in to_client for d in client.receive(datagram)]
        to_client = replies
    return carried


def test_handshake_derives_mirrored_keys() -> None:
    client, server = _pair()
    assert _pump(client, server) >= 4
    assert client.state is server.state is RtpDtlsState.CONNECTED
    assert client.keys is not None and server.keys is not None
    assert client.keys.suite == server.keys.suite == DTLS_SRTP_PROFILES[0].suite
    assert client.keys.tx_key_salt == server.keys.rx_key_salt
    assert client.keys.rx_key_salt == server.keys.tx_key_salt
    assert client.keys.tx_key_salt != client.keys.rx_key_salt
    assert len(client.keys.tx_key_salt) == 16 + 12  # AES-128-GCM key || 96-bit salt
    assert "key_salt" not in repr(client.keys).replace("tx_key_salt", "").replace(
        "rx_key_salt", ""
    ) and bytes(client.keys.tx_key_salt).hex() not in repr(client.keys)


def test_the_derived_keys_protect_srtp_end_to_end() -> None:
    client, server = _pair()
    _pump(client, server)
    assert client.keys is not None and server.keys is not None
    sender = SrtpContext(client.keys.suite, client.keys.tx_key_salt, SrtpDirection.OUTBOUND)
    receiver = SrtpContext(server.keys.suite, server.keys.rx_key_salt, SrtpDirection.INBOUND)
    packet = bytes([0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4]) + b"\xff" * 160
    assert receiver.unprotect(sender.protect(packet)) == packet


def test_srtp_profile_follows_the_client_offer() -> None:
    sha1_80 = [p for p in DTLS_SRTP_PROFILES if p.suite == "AES_CM_128_HMAC_SHA1_80"]
    client, server = _pair(profiles=sha1_80)
    _pump(client, server)
    assert client.keys is not None and client.keys.suite == "AES_CM_128_HMAC_SHA1_80"
    assert len(client.keys.rx_key_salt) == 16 + 14


def test_fingerprint_mismatch_is_refused_without_keys() -> None:
    stranger = RtpDtlsCertificate.generate().fingerprint()
    client = RtpDtlsSession(CLIENT_CERT, client=True, fingerprints=[stranger])
    server = RtpDtlsSession(SERVER_CERT, client=False, fingerprints=[CLIENT_CERT.fingerprint()])
    _pump(client, server)
    assert client.state is RtpDtlsState.FAILED
    assert client.error == "certificate does not match a=fingerprint"
    assert client.keys is None
    assert server.state is not RtpDtlsState.CONNECTED and server.keys is None


def test_server_checks_the_client_certificate_too() -> None:
    client = RtpDtlsSession(CLIENT_CERT, client=True, fingerprints=[SERVER_CERT.fingerprint()])
    wrong = SdpFingerprint("sha-256", bytes(32))
    server = RtpDtlsSession(SERVER_CERT, client=False, fingerprints=[wrong])
    _pump(client, server)
    assert server.state is RtpDtlsState.FAILED and server.keys is None
    assert client.state is not RtpDtlsState.CONNECTED or client.keys is not None
    assert server.error == "certificate does not match a=fingerprint"


def test_sessions_need_fingerprints_and_start_once() -> None:
    with pytest.raises(DtlsLocalError):
        RtpDtlsSession(CLIENT_CERT, client=True, fingerprints=[])
    client, _ = _pair()
    client.start()
    with pytest.raises(DtlsLocalError):
        client.start()
    assert client.timeout() is not None  # the ClientHello retransmission timer runs


def test_close_notify_ends_the_peer() -> None:
    client, server = _pair()
    _pump(client, server)
    for datagram in client.close():
        server.receive(datagram)
    assert client.state is RtpDtlsState.CLOSED and server.state is RtpDtlsState.CLOSED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), max_size=5))
def test_garbage_never_raises(datagrams: list[bytes]) -> None:
    server = RtpDtlsSession(SERVER_CERT, client=False, fingerprints=[CLIENT_CERT.fingerprint()])
    for datagram in datagrams:
        assert isinstance(server.receive(datagram), list)
    assert server.keys is None


# -- on loopback, through RtpStream ----------------------------------------------------


async def _keyed_streams(
    server_fingerprint: SdpFingerprint,
) -> tuple[RtpStream, RtpStream, RtpDtlsKeying, RtpDtlsKeying]:
    a, b = RtpStream("a", rtcp_interval=60), RtpStream("b", rtcp_interval=60)
    await a.bind("127.0.0.1", _free_even_port())
    await b.bind("127.0.0.1", _free_even_port(skip=a.rtp_port))
    a.set_remote("127.0.0.1", b.rtp_port)
    b.set_remote("127.0.0.1", a.rtp_port)
    client = RtpDtlsSession(CLIENT_CERT, client=True, fingerprints=[server_fingerprint])
    server = RtpDtlsSession(SERVER_CERT, client=False, fingerprints=[CLIENT_CERT.fingerprint()])
    return a, b, RtpDtlsKeying(a, client), RtpDtlsKeying(b, server)


def _free_even_port(skip: int = 0) -> int:
    import socket

    for port in range(47000, 48000, 2):
        if port == skip:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one:
                one.bind(("127.0.0.1", port))
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as two:
                    two.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


async def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_no_media_before_the_handshake_then_media_both_ways() -> None:
    asyncio.run(asyncio.wait_for(_media_after_handshake(), 10))


async def _media_after_handshake() -> None:
    a, b, client, server = await _keyed_streams(SERVER_CERT.fingerprint())
    try:
        assert not a.send_rtp(b"\xff" * 160, 0, 160)  # unkeyed: nothing goes out
        b.send_raw(bytes([0x80, 0, 0, 1]) + bytes(168), ("127.0.0.1", a.rtp_port))
        await _until(lambda: a.unkeyed == 1)
        assert a.packets_in == 0
        client.start()
        server.start()
        await _until(lambda: client.state is server.state is RtpDtlsState.CONNECTED)
        assert a.suite is not None and a.suite.name == "AEAD_AES_128_GCM"
        for _ in range(5):
            assert a.send_rtp(b"\xff" * 160, 0, 160)
            assert b.send_rtp(b"\xd5" * 160, 8, 160)
        await _until(lambda: a.packets_in == 5 and b.packets_in == 5)
        assert a.auth_failures == b.auth_failures == 0
    finally:
        a.close()
        b.close()
        await asyncio.gather(a.wait_closed(), b.wait_closed())
    assert client.closed and server.closed


def test_mismatch_on_loopback_leaves_both_streams_unkeyed() -> None:
    asyncio.run(asyncio.wait_for(_mismatch_on_loopback(), 10))


async def _mismatch_on_loopback() -> None:
    wrong = RtpDtlsCertificate.generate().fingerprint()
    a, b, client, server = await _keyed_streams(wrong)
    failures: list[str] = []
    client.on_failed = failures.append
    try:
        client.start()
        server.start()
        await _until(lambda: client.state is RtpDtlsState.FAILED)
        await asyncio.sleep(0.05)
        assert failures == ["certificate does not match a=fingerprint"]
        assert a.suite is None and b.suite is None
        assert not a.send_rtp(b"\xff" * 160, 0, 160) and not b.send_rtp(b"\xff" * 160, 0, 160)
    finally:
        a.close()
        b.close()
        await asyncio.gather(a.wait_closed(), b.wait_closed())
