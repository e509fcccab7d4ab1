"""RTCP reception statistics and SR/RR building (RFC 3550 §6.4, Appendix A)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from mrf.rtp.packet import RtcpReceiverReport, RtcpSenderReport, RtpPacket, parse_rtcp
from mrf.rtp.reception import (
    NTP_EPOCH_OFFSET,
    RtpReceptionStats,
    build_report,
    ntp_timestamp,
)

SSRC = 0xCAFE


def packet(seq: int, timestamp: int = 0, ssrc: int = SSRC) -> RtpPacket:
    return RtpPacket(0, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc, b"\xff" * 160)


def feed(stats: RtpReceptionStats, seqs: list[int], *, jitter_free: bool = True) -> None:
    for i, seq in enumerate(seqs):
        stats.update(packet(seq, 160 * i), i * 0.02 if jitter_free else i * 0.02 + (i % 2) * 0.01)


def test_ntp_timestamp() -> None:
    assert ntp_timestamp(0.0) == NTP_EPOCH_OFFSET << 32
    assert ntp_timestamp(1.5) == (NTP_EPOCH_OFFSET + 1) << 32 | 1 << 31


def test_no_source_yet_means_no_block() -> None:
    stats = RtpReceptionStats(8000)
    assert stats.report_blocks(0.0) == () and stats.cumulative_lost == 0


def test_loss_fraction_and_highest_sequence_across_wrap() -> None:
    stats = RtpReceptionStats(8000)
    seqs = [s & 0xFFFF for s in range(65530, 65546) if s not in (65534, 65540)]
    feed(stats, seqs)
    (block,) = stats.report_blocks(1.0)
    assert block.ssrc == SSRC
    assert block.highest_sequence == (1 << 16) + 9  # one cycle, max_seq 9
    assert block.packets_lost == 2 == stats.cumulative_lost
    assert block.fraction_lost == (2 << 8) // 16
    assert block.jitter == 0  # packets arrive exactly on their timestamps
    (block,) = stats.report_blocks(2.0)
    assert block.fraction_lost == 0  # interval since the last report: nothing new


def test_jitter_grows_with_irregular_arrival() -> None:
    stats = RtpReceptionStats(8000)
    feed(stats, list(range(1, 50)), jitter_free=False)
    (block,) = stats.report_blocks(1.0)
    assert 40 < block.jitter <= 80  # |D| = 80 samples (10 ms) each packet; J converges to it


def test_duplicates_give_negative_loss_and_zero_fraction() -> None:
    stats = RtpReceptionStats(8000)
    feed(stats, [1, 2, 2, 3, 3])
    (block,) = stats.report_blocks(1.0)
    assert block.packets_lost == -2 and block.fraction_lost == 0


def test_new_ssrc_or_big_jump_restarts() -> None:
    stats = RtpReceptionStats(8000)
    feed(stats, [1, 2, 3])
    stats.update(packet(4, ssrc=SSRC + 1), 1.0)
    assert stats.ssrc == SSRC + 1 and stats.received == 1
    stats.update(packet(4 + 5000, ssrc=SSRC + 1), 1.1)
    assert stats.base_seq == 5004 and stats.received == 1


def test_lsr_and_dlsr_from_last_sender_report() -> None:
    stats = RtpReceptionStats(8000)
    feed(stats, [1])
    ntp = 0x1122334455667788
    stats.sender_report_received(RtcpSenderReport(SSRC, ntp, 0, 0, 0), 10.0)
    (block,) = stats.report_blocks(10.5)
    assert block.last_sr == 0x33445566
    assert block.delay_since_last_sr == 32768  # 0.5 s in 1/65536 s units


def test_build_report_rr_before_sending_then_sr() -> None:
    stats = RtpReceptionStats(8000)
    feed(stats, [1, 2])
    rr = build_report(
        7,
        stats,
        now=5.0,
        wall_time=0.0,
        clock_rate=8000,
        last_send=None,
        packets_sent=0,
        octets_sent=0,
    )
    assert isinstance(rr, RtcpReceiverReport) and rr.ssrc == 7 and len(rr.reports) == 1
    sr = build_report(
        7,
        stats,
        now=5.5,
        wall_time=1.5,
        clock_rate=8000,
        last_send=(5.0, 0xFFFFFF00),
        packets_sent=3,
        octets_sent=480,
    )
    assert isinstance(sr, RtcpSenderReport)
    assert sr.rtp_timestamp == (0xFFFFFF00 + 4000) & 0xFFFFFFFF  # extrapolated, wrapped
    assert sr.ntp_timestamp == ntp_timestamp(1.5)
    assert (sr.packet_count, sr.octet_count) == (3, 480)
    assert parse_rtcp(bytes(sr))[0] == sr


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=1, max_size=200))
def test_report_fields_stay_in_range(seqs: list[int]) -> None:
    stats = RtpReceptionStats(8000)
    for i, seq in enumerate(seqs):
        stats.update(packet(seq, i * 160), i * 0.02)
    (block,) = stats.report_blocks(10.0)
    assert 0 <= block.fraction_lost <= 255
    assert -(1 << 23) <= block.packets_lost < 1 << 23
    assert 0 <= block.highest_sequence <= 0xFFFFFFFF and block.jitter >= 0
    assert parse_rtcp(bytes(RtcpReceiverReport(1, (block,))))[0].reports == (block,)  # type: ignore[union-attr]
