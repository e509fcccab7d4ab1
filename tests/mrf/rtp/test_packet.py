"""RTP/RTCP codec tests (RFC 3550 §5.1, §6.1, §6.4-§6.6; RFC 5761 §4)."""

import struct

import pytest

from mrf.rtp.packet import (
    RtcpBye,
    RtcpPacketType,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSdesItemType,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtcpUnknown,
    RtpLocalError,
    RtpPacket,
    RtpRemoteError,
    is_rtcp,
    parse_rtcp,
)

# Hand-assembled from the RFC 3550 §5.1 layout: V=2, M=1, PT=0, seq 0x1234,
# ts 0x00000100, SSRC 0xdeadbeef, two payload octets.
RTP_VECTOR = bytes.fromhex("8080123400000100deadbeefffff")


def test_parse_fixed_header_vector() -> None:
    packet = RtpPacket.parse(RTP_VECTOR)
    assert packet.payload_type == 0
    assert packet.marker is True
    assert packet.sequence_number == 0x1234
    assert packet.timestamp == 0x100
    assert packet.ssrc == 0xDEADBEEF
    assert packet.payload == b"\xff\xff"
    assert bytes(packet) == RTP_VECTOR


def test_round_trip_with_csrc_extension_and_padding() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=1,
        payload=b"\xd5" * 160,
        csrc=(2, 3, 4),
        extension_profile=0xBEDE,
        extension=b"\x10\x01\x00\x00",
        padding_size=4,
    )
    data = bytes(packet)
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert len(data) == 12 + 12 + 4 + 4 + 160 + 4
    assert data[-1] == 4
    assert RtpPacket.parse(data) == packet


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00\x00", "too short"),
        (bytes.fromhex("40001234000001000000000a"), "version"),
        (bytes.fromhex("82001234000001000000000a00000001"), "CSRC"),
        (bytes.fromhex("90001234000001000000000a"), "extension"),
        (bytes.fromhex("90001234000001000000000abede000200000000"), "extension"),
        (bytes.fromhex("a0001234000001000000000a0000"), "padding"),
        (bytes.fromhex("a0001234000001000000000a0009"), "padding"),
    ],
)
def test_malformed_rtp_raises_remote_error(data: bytes, message: str) -> None:
    with pytest.raises(RtpRemoteError, match=message):
        RtpPacket.parse(data)


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(128, 0, 0, 0),
        RtpPacket(0, 1 << 16, 0, 0),
        RtpPacket(0, 0, 1 << 32, 0),
        RtpPacket(0, 0, 0, -1),
        RtpPacket(0, 0, 0, 0, csrc=tuple(range(16))),
        RtpPacket(0, 0, 0, 0, extension_profile=1, extension=b"abc"),
        RtpPacket(0, 0, 0, 0, padding_size=256),
    ],
)
def test_build_rejects_out_of_range_fields(packet: RtpPacket) -> None:
    with pytest.raises(RtpLocalError):
        bytes(packet)


def test_is_rtcp_demux_rfc5761() -> None:
    for packet_type in (200, 201, 202, 203, 204, 205, 206):
        assert is_rtcp(bytes([0x80, packet_type]))
    assert not is_rtcp(RTP_VECTOR)
    assert not is_rtcp(bytes([0x80, 0x80 | 96]))  # PT 96 with marker = 224
    assert not is_rtcp(b"\x80")


def _block(ssrc: int = 7, lost: int = -3) -> RtcpReportBlock:
    return RtcpReportBlock(ssrc, 25, lost, 0x10005, 40, 0x12345678, 65536)


def test_compound_sr_sdes_bye_round_trip() -> None:
    sr = RtcpSenderReport(0xCAFE, 0xE1234567_89ABCDEF, 160, 50, 8000, (_block(),))
    sdes = RtcpSourceDescription(((0xCAFE, ((RtcpSdesItemType.CNAME, b"a@b"),)),))
    bye = RtcpBye((0xCAFE,), b"bye")
    data = bytes(sr) + bytes(sdes) + bytes(bye)
    assert len(data) % 4 == 0
    assert data[1] == RtcpPacketType.SR
    assert struct.unpack_from("!H", data, 2)[0] == (len(bytes(sr)) // 4) - 1
    assert parse_rtcp(data) == [sr, sdes, bye]


def test_rr_negative_cumulative_loss_and_unknown_types() -> None:
    rr = RtcpReceiverReport(9, (_block(lost=-1), _block(ssrc=8, lost=(1 << 23) - 1)))
    app = RtcpUnknown(RtcpPacketType.APP, 1, b"\x00\x00\x00\x09name")
    assert parse_rtcp(bytes(rr) + bytes(app)) == [rr, app]


def test_sdes_chunk_exactly_word_aligned_gets_full_end_word() -> None:
    sdes = RtcpSourceDescription(((1, ((RtcpSdesItemType.CNAME, b"ab"),)),))
    data = bytes(sdes)
    assert data[-4:] == b"\x00\x00\x00\x00"  # 4 SSRC + 4 item -> one whole word of END
    assert parse_rtcp(data) == [sdes]


def test_rtcp_padding_in_last_packet() -> None:
    body = struct.pack("!I", 5) + b"\x00\x00\x00\x04"  # RR with 4 octets of padding
    data = struct.pack("!BBH", 0xA0, 201, 2) + body
    assert parse_rtcp(data) == [RtcpReceiverReport(5)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\xc8", "too short"),
        (bytes.fromhex("40c9000100000005"), "version"),
        (bytes.fromhex("80c9000500000005"), "past the datagram"),
        (bytes.fromhex("81c9000100000005"), "report blocks"),
        (bytes.fromhex("80c8000100000005"), "truncated"),
        (bytes.fromhex("80c900010000000580"), "trailing"),
        (bytes.fromhex("a0c9000100000000"), "padding"),
        (bytes.fromhex("a0c900010000000580c9000100000005"), "padding"),
        (bytes.fromhex("81ca0002000000050109"), "past the datagram"),
        (bytes.fromhex("81ca00020000000501096162"), "past the packet"),
        (bytes.fromhex("81ca000100000005"), "END"),
        (bytes.fromhex("81cb00020000000509616263"), "reason"),
    ],
)
def test_malformed_rtcp_raises_remote_error(data: bytes, message: str) -> None:
    with pytest.raises(RtpRemoteError, match=message):
        parse_rtcp(data)


def test_rtcp_build_rejects_bad_fields() -> None:
    with pytest.raises(RtpLocalError):
        bytes(RtcpUnknown(204, 0, b"abc"))
    with pytest.raises(RtpLocalError):
        bytes(RtcpReceiverReport(1, (_block(lost=1 << 23),)))
    with pytest.raises(RtpLocalError):
        bytes(RtcpBye(tuple(range(32))))
