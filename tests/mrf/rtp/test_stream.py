"""RtpStream over real UDP sockets on 127.0.0.1 against a pylibsrtp test peer."""

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable

import pylibsrtp
import pytest

from mrf.rtp.packet import (
    RtcpBye,
    RtcpPacketType,
    RtcpReceiverReport,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtpPacket,
    is_rtcp,
    parse_rtcp,
)
from mrf.rtp.srtp import SrtpLocalError
from mrf.rtp.stream import RtpStream

SUITE = "AES_CM_128_HMAC_SHA1_80"
HOST = "127.0.0.1"
# independent mapping of SDES suites to libsrtp profiles (not mrf.rtp.srtp's)
PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
}


def session(key: bytes, outbound: bool, suite: str = SUITE) -> pylibsrtp.Session:
    ssrc_type = (
        pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND
    )
    return pylibsrtp.Session(
        pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=PROFILES[suite])
    )


class Peer(asyncio.DatagramProtocol):
    """A participant: one UDP socket, records what it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.put_nowait(data)


async def open_peer() -> tuple[asyncio.DatagramTransport, Peer, int]:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
    return transport, peer, transport.get_extra_info("sockname")[1]


def rtp(seq: int, payload: bytes = b"\x11" * 160, ssrc: int = 0x1234) -> bytes:
    return bytes(RtpPacket(0, seq, seq * 160, ssrc, payload))


async def until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.005)


def run(coro: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(10):
            await coro()

    asyncio.run(bounded())


async def keyed_stream(port: int, **kwargs: object) -> tuple[RtpStream, bytes, bytes]:
    rx_key, tx_key = os.urandom(30), os.urandom(30)
    stream = RtpStream("test", **kwargs)  # type: ignore[arg-type]
    await stream.bind(HOST, port)
    stream.set_keys(SUITE, rx_key, tx_key)
    return stream, rx_key, tx_key


def free_even_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            port: int = s.getsockname()[1] & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
            ):
                a.bind((HOST, port))
                b.bind((HOST, port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def test_counts_and_decrypts_participant_packets() -> None:
    async def body() -> None:
        got: list[RtpPacket] = []
        stream, rx_key, _ = await keyed_stream(free_even_port(), on_rtp=lambda s, p: got.append(p))
        transport, _, _ = await open_peer()
        tx = session(rx_key, outbound=True)
        for seq in range(1, 11):
            transport.sendto(tx.protect(rtp(seq, bytes([seq]) * 160)), (HOST, stream.rtp_port))
        await until(lambda: stream.packets_in == 10)
        assert [p.payload for p in got] == [bytes([s]) * 160 for s in range(1, 11)]
        stats = stream.stats()
        assert stats["packets_in"] == 10 and stats["bytes_in"] == 1600
        assert stats["auth_failures"] == stats["replays"] == stats["malformed"] == 0
        stream.close()
        transport.close()

    run(body)


def test_wrong_key_replay_and_garbage_are_counted_not_delivered() -> None:
    async def body() -> None:
        got: list[RtpPacket] = []
        stream, rx_key, _ = await keyed_stream(free_even_port(), on_rtp=lambda s, p: got.append(p))
        transport, _, _ = await open_peer()
        dest = (HOST, stream.rtp_port)
        wrong = session(os.urandom(30), outbound=True)
        for seq in range(1, 4):
            transport.sendto(wrong.protect(rtp(seq)), dest)
        good = session(rx_key, outbound=True).protect(rtp(1))
        transport.sendto(good, dest)
        transport.sendto(good, dest)  # replay
        transport.sendto(b"\x00" * 40, dest)  # not RTP version 2
        transport.sendto(b"\x80", dest)
        await until(lambda: stream.malformed == 2 and stream.replays == 1)
        assert stream.auth_failures == 3
        assert stream.packets_in == 1 and len(got) == 1
        assert stream.remote_rtp == transport.get_extra_info("sockname")  # latched on auth only
        stream.close()
        transport.close()

    run(body)


def test_streams_with_different_keys_cannot_read_each_other() -> None:
    async def body() -> None:
        a, a_key, _ = await keyed_stream(free_even_port())
        b, b_key, _ = await keyed_stream(free_even_port())
        transport, _, _ = await open_peer()
        transport.sendto(session(a_key, True).protect(rtp(1)), (HOST, b.rtp_port))
        transport.sendto(session(b_key, True).protect(rtp(1)), (HOST, a.rtp_port))
        await until(lambda: a.auth_failures == 1 and b.auth_failures == 1)
        assert a.packets_in == b.packets_in == 0
        a.close()
        b.close()
        transport.close()

    run(body)


def test_rekey_wipes_old_keys() -> None:
    async def body() -> None:
        stream, old_rx, old_tx = await keyed_stream(free_even_port())
        old_contexts = (stream._rx, stream._tx)
        transport, _, _ = await open_peer()
        old_sender = session(old_rx, True)
        transport.sendto(old_sender.protect(rtp(1)), (HOST, stream.rtp_port))
        await until(lambda: stream.packets_in == 1)
        new_rx = os.urandom(30)
        stream.set_keys(SUITE, new_rx, os.urandom(30))
        assert all(c is not None and c.wiped and c._key.wiped for c in old_contexts)
        transport.sendto(old_sender.protect(rtp(2)), (HOST, stream.rtp_port))
        transport.sendto(session(new_rx, True).protect(rtp(3)), (HOST, stream.rtp_port))
        await until(lambda: stream.auth_failures == 1 and stream.packets_in == 2)
        stream.close()
        assert stream._rx is None and stream._tx is None
        assert all(c._key.wiped for c in old_contexts if c is not None)
        transport.close()

    run(body)


def test_silence_decrypts_with_tx_key_pcmu_and_pcma() -> None:
    async def body() -> None:
        stream, _, tx_key = await keyed_stream(free_even_port())
        transport, peer, port = await open_peer()
        stream.set_remote(HOST, port, port)  # rtcp-mux peer
        stream.start_silence("PCMU")
        peer_rx = session(tx_key, outbound=False)
        packets: list[RtpPacket] = []
        while len(packets) < 5:
            data = await peer.received.get()
            if not is_rtcp(data):
                packets.append(RtpPacket.parse(peer_rx.unprotect(data)))
        assert all(p.payload_type == 0 and p.payload == b"\xff" * 160 for p in packets)
        assert packets[0].marker and not any(p.marker for p in packets[1:])
        assert len({p.ssrc for p in packets}) == 1 and packets[0].ssrc == stream.ssrc
        for prev, cur in zip(packets, packets[1:], strict=False):
            assert cur.sequence_number == (prev.sequence_number + 1) & 0xFFFF
            assert (cur.timestamp - prev.timestamp) % (1 << 32) >= 160
        stream.start_silence("PCMA")
        data = await peer.received.get()
        while is_rtcp(data):
            data = await peer.received.get()
        packet = RtpPacket.parse(peer_rx.unprotect(data))
        if packet.payload_type == 0:  # one PCMU packet may have been in flight
            packet = RtpPacket.parse(peer_rx.unprotect(await peer.received.get()))
        assert packet.payload_type == 8 and packet.payload == b"\xd5" * 160
        stream.stop_silence()
        assert stream.packets_out >= 6
        stream.close()
        transport.close()

    run(body)


def test_silence_schedule_is_paced_at_20ms() -> None:
    async def body() -> None:
        stream, _, _ = await keyed_stream(free_even_port())
        transport, _, port = await open_peer()
        stream.set_remote(HOST, port)
        loop = asyncio.get_running_loop()
        start = loop.time()
        stream.start_silence()
        await asyncio.sleep(0.5)
        stream.stop_silence()
        elapsed = loop.time() - start
        assert abs(stream.packets_out - (elapsed / 0.020 + 1)) <= 5
        stream.close()
        transport.close()

    run(body)


def test_srtcp_sender_report_and_bye() -> None:
    async def body() -> None:
        stream, rx_key, tx_key = await keyed_stream(free_even_port(), rtcp_interval=0.05)
        rtp_t, rtp_peer, rtp_port = await open_peer()
        rtcp_t, rtcp_peer, rtcp_port = await open_peer()
        stream.set_remote(HOST, rtp_port, rtcp_port)
        sender = session(rx_key, True)
        for seq in range(1, 4):
            rtp_t.sendto(sender.protect(rtp(seq)), (HOST, stream.rtp_port))
        await until(lambda: stream.packets_in == 3)
        stream.send_rtp(b"\xff" * 160, 0, 160)
        peer_rx = session(tx_key, False)
        packets = parse_rtcp(peer_rx.unprotect_rtcp(await rtcp_peer.received.get()))
        sr = packets[0]
        assert isinstance(sr, RtcpSenderReport) and sr.ssrc == stream.ssrc
        assert sr.packet_count == 1 and sr.octet_count == 160
        assert sr.reports[0].ssrc == 0x1234 and sr.reports[0].highest_sequence == 3
        assert sr.reports[0].packets_lost == 0
        assert isinstance(packets[1], RtcpSourceDescription)
        # peer RTCP on the RTCP port is unprotected and counted
        peer_sr = bytes(RtcpSenderReport(0x1234, 1 << 40, 480, 3, 480))
        rtcp_t.sendto(sender.protect_rtcp(peer_sr), (HOST, stream.rtcp_port))
        await until(lambda: stream.rtcp_in == 1)
        stream.close()
        while True:
            last = parse_rtcp(peer_rx.unprotect_rtcp(await rtcp_peer.received.get()))
            if isinstance(last[-1], RtcpBye):
                break
        assert last[-1].sources == (stream.ssrc,)
        assert isinstance(last[0], RtcpSenderReport | RtcpReceiverReport)
        assert last[0].reports[0].last_sr == (1 << 24)  # middle 32 bits of the peer's NTP
        rtp_t.close()
        rtcp_t.close()
        only = rtp_peer.received.get_nowait()  # the one RTP packet, no RTCP on the RTP port
        assert not is_rtcp(only) and rtp_peer.received.empty()

    run(body)


def test_rtcp_mux_on_rtp_port_and_symmetric_latching() -> None:
    async def body() -> None:
        stream, rx_key, tx_key = await keyed_stream(free_even_port())
        transport, peer, port = await open_peer()
        stream.set_remote(HOST, 9, 9)  # signalled address is wrong (NAT): latch must fix it
        sender = session(rx_key, True)
        transport.sendto(sender.protect(rtp(1)), (HOST, stream.rtp_port))
        muxed = bytes(RtcpSenderReport(0x1234, 0, 160, 1, 160))
        transport.sendto(sender.protect_rtcp(muxed), (HOST, stream.rtp_port))
        await until(lambda: stream.packets_in == 1 and stream.rtcp_in == 1)
        assert stream.remote_rtp == (HOST, port) and stream.remote_rtcp == (HOST, port)
        assert stream.send_rtp(b"\x01\x02", 8, 2)
        assert stream.send_rtcp_report()
        peer_rx = session(tx_key, False)
        first, second = await peer.received.get(), await peer.received.get()
        assert RtpPacket.parse(peer_rx.unprotect(first)).payload == b"\x01\x02"
        assert is_rtcp(second)
        assert parse_rtcp(peer_rx.unprotect_rtcp(second))[0].ssrc == stream.ssrc  # type: ignore[union-attr]
        stream.close()
        transport.close()

    run(body)


def test_unkeyed_and_closed_streams_send_nothing() -> None:
    async def body() -> None:
        stream = RtpStream("bare")
        await stream.bind(HOST, free_even_port())
        transport, _, port = await open_peer()
        transport.sendto(rtp(1), (HOST, stream.rtp_port))
        await until(lambda: stream.unkeyed == 1)
        stream.set_remote(HOST, port)
        assert not stream.send_rtp(b"x", 0, 1)
        assert not stream.send_rtcp_report()
        stream.set_keys("AEAD_AES_128_GCM", os.urandom(28), os.urandom(28))
        assert stream.stats()["suite"] == "AEAD_AES_128_GCM"
        stream.close()
        assert not stream.send_rtp(b"x", 0, 1)
        stream.close()  # idempotent
        await stream.wait_closed()
        transport.close()

    run(body)


def test_close_releases_ports() -> None:
    async def body() -> None:
        port = free_even_port()
        stream, _, _ = await keyed_stream(port)
        stream.close()
        await stream.wait_closed()
        again = RtpStream("again")
        await again.bind(HOST, port)
        again.close()
        await again.wait_closed()

    run(body)


def test_rtcp_packet_type_constants_match_demux() -> None:
    assert all(is_rtcp(bytes([0x80, t])) for t in RtcpPacketType)


def test_rtcp_mux_remote_follows_rtp_latch() -> None:
    async def body() -> None:
        stream, rx_key, tx_key = await keyed_stream(free_even_port())
        transport, peer, port = await open_peer()
        stream.set_remote(HOST, 9, 9)  # signalled rtcp-mux at a wrong address
        transport.sendto(session(rx_key, True).protect(rtp(1)), (HOST, stream.rtp_port))
        await until(lambda: stream.packets_in == 1)
        assert stream.remote_rtcp == (HOST, port)
        assert stream.send_rtcp_report()
        report = parse_rtcp(session(tx_key, False).unprotect_rtcp(await peer.received.get()))
        assert isinstance(report[0], RtcpReceiverReport)  # nothing sent yet: RR, not SR
        stream.close()
        transport.close()

    run(body)


def test_peer_mki_is_checked_and_stripped() -> None:
    """A peer that offered `|1:4` puts 00000001 before the tag of its SRTP and SRTCP."""
    mki = (1).to_bytes(4, "big")

    async def body() -> None:
        stream, rx_key, _ = await keyed_stream(free_even_port())
        stream.set_keys(SUITE, rx_key, os.urandom(30), rx_mki=mki)
        transport, _, _ = await open_peer()
        peer = session(rx_key, outbound=True)
        sr = bytes(RtcpSenderReport(0x1234, 1, 2, 3, 4))
        for data, mark in ((peer.protect(rtp(1)), mki), (peer.protect(rtp(2)), b"\x00" * 4)):
            transport.sendto(data[:-10] + mark + data[-10:], (HOST, stream.rtp_port))
        srtcp = peer.protect_rtcp(sr)
        transport.sendto(srtcp[:-10] + mki + srtcp[-10:], (HOST, stream.rtcp_port))
        await until(lambda: stream.packets_in == 1 and stream.auth_failures == 1)
        await until(lambda: stream.rtcp_in == 1)
        with pytest.raises(SrtpLocalError):
            stream.set_keys("AEAD_AES_128_GCM", os.urandom(28), os.urandom(28), rx_mki=mki)
        assert stream.suite is None and not stream.send_rtp(b"x", 0, 1)  # left unkeyed
        stream.close()
        transport.close()

    run(body)


def test_sent_packets_are_exactly_rtp_packet_encodings() -> None:
    async def body() -> None:
        stream, _, tx_key = await keyed_stream(free_even_port())
        transport, peer, port = await open_peer()
        stream.set_remote(HOST, port, port)
        seq, timestamp = stream._seq, stream._timestamp
        assert stream.send_rtp(b"\x01\x02" * 80, 127, 160, marker=True)
        assert stream.send_rtp(b"\x03" * 33, 0, 160)
        with pytest.raises(ValueError):
            stream.send_rtp(b"\x00", 128, 160)
        peer_rx = session(tx_key, outbound=False)
        sent = []
        while len(sent) < 2:
            data = await peer.received.get()
            if not is_rtcp(data):
                sent.append(peer_rx.unprotect(data))
        ssrc = stream.ssrc
        assert sent[0] == bytes(RtpPacket(127, seq, timestamp, ssrc, b"\x01\x02" * 80, marker=True))
        assert sent[1] == bytes(
            RtpPacket(0, (seq + 1) & 0xFFFF, timestamp + 160, ssrc, b"\x03" * 33)
        )
        assert stream.packets_out == 2
        stream.close()
        transport.close()

    run(body)
