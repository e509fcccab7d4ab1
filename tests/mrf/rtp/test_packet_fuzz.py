"""Property tests: arbitrary bytes parse or raise RtpRemoteError; valid packets round-trip."""

from hypothesis import given
from hypothesis import strategies as st

from mrf.rtp.packet import (
    RtcpBye,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtpPacket,
    RtpRemoteError,
    parse_rtcp,
)

u32 = st.integers(0, 2**32 - 1)


@given(st.binary(max_size=400))
def test_rtp_parse_arbitrary_bytes(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpRemoteError:
        return
    assert RtpPacket.parse(bytes(packet)) == packet


@given(st.binary(max_size=400))
def test_rtcp_parse_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_rtcp(data)
    except RtpRemoteError:
        pass


@given(st.binary(max_size=200).map(lambda b: bytes([0x80 | (b[0] & 0x3F) if b else 0x80]) + b))
def test_rtcp_parse_version2_prefixed_bytes(data: bytes) -> None:
    try:
        parse_rtcp(data)
    except RtpRemoteError:
        pass


rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 65535),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(u32, max_size=15).map(tuple),
    extension_profile=st.none() | st.integers(0, 65535),
    padding_size=st.integers(0, 255),
).map(lambda p: p if p.extension_profile is None else _with_ext(p))


def _with_ext(packet: RtpPacket) -> RtpPacket:
    packet.extension = b"\x01\x02\x03\x04" * (packet.sequence_number % 3)
    return packet


@given(rtp_packets)
def test_rtp_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(packet)) == packet


blocks = st.builds(
    RtcpReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    packets_lost=st.integers(-(2**23), 2**23 - 1),
    highest_sequence=u32,
    jitter=u32,
    last_sr=u32,
    delay_since_last_sr=u32,
)
block_lists = st.lists(blocks, max_size=31).map(tuple)
rtcp_packets = st.one_of(
    st.builds(RtcpSenderReport, u32, st.integers(0, 2**64 - 1), u32, u32, u32, block_lists),
    st.builds(RtcpReceiverReport, u32, block_lists),
    st.builds(
        RtcpBye,
        st.lists(u32, max_size=31).map(tuple),
        st.binary(max_size=255),
    ),
    st.builds(
        RtcpSourceDescription,
        st.lists(
            st.tuples(
                u32,
                st.lists(st.tuples(st.integers(1, 8), st.binary(max_size=255)), max_size=4).map(
                    tuple
                ),
            ),
            max_size=31,
        ).map(tuple),
    ),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_rtcp_compound_round_trip(packets: list[RtcpPacket]) -> None:
    data = b"".join(bytes(p) for p in packets)
    assert parse_rtcp(data) == packets
    for cut in (1, 3, len(data) - 1):
        try:
            parse_rtcp(data[:cut])
        except RtpRemoteError:
            pass
