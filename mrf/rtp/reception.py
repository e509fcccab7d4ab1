"""RTCP bookkeeping of one stream, sans-I/O: reception statistics of the peer's
source (RFC 3550 §6.4.1, Appendix A.1, A.3, A.8) and the SR/RR that carries them.

`RtpReceptionStats` is fed every authenticated RTP packet and every SR from the
peer; `build_report()` turns it, plus what we sent, into an SR (if we have sent
RTP) or an RR (RFC 3550 §6.4).  Times are passed in, so this module never reads
a clock.
"""

from __future__ import annotations

from mrf.rtp.packet import RtcpReceiverReport, RtcpReportBlock, RtcpSenderReport, RtpPacket

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01, RFC 5905 §6
MAX_DROPOUT = 3000  # RFC 3550 §A.1
MAX_MISORDER = 100  # RFC 3550 §A.1
_SEQ_MOD = 1 << 16


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP timestamp of a Unix time. # RFC 3550 §4"""
    seconds = unix_time + NTP_EPOCH_OFFSET
    return int(seconds) << 32 | int((seconds % 1) * (1 << 32))


class RtpReceptionStats:
    """Reception statistics of the peer's source. # RFC 3550 §6.4.1, §A.1, §A.3, §A.8"""

    def __init__(self, clock_rate: int):
        self.clock_rate = clock_rate
        self._reset(None, 0)

    def _reset(self, ssrc: int | None, seq: int) -> None:
        self.ssrc = ssrc
        self.base_seq = self.max_seq = seq
        self.cycles = self.received = 0
        self.expected_prior = self.received_prior = 0
        self.jitter = 0.0
        self._transit: int | None = None
        self._last_sr: tuple[int, float] | None = None  # (middle 32 bits of NTP, arrival)

    def update(self, packet: RtpPacket, now: float) -> None:
        """Count one authenticated packet arriving at `now` (seconds, monotonic)."""
        seq = packet.sequence_number
        delta = (seq - self.max_seq) % _SEQ_MOD
        if packet.ssrc != self.ssrc or MAX_DROPOUT <= delta < _SEQ_MOD - MAX_MISORDER:
            self._reset(packet.ssrc, seq)  # new source, or a jump: RFC 3550 §A.1 restart
        elif 0 < delta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD
            self.max_seq = seq
        self.received += 1
        self._update_jitter(packet.timestamp, now)

    def _update_jitter(self, timestamp: int, now: float) -> None:
        """Interarrival jitter J += (|D| - J) / 16. # RFC 3550 §6.4.1, §A.8"""
        transit = int(now * self.clock_rate) - timestamp
        if self._transit is not None:
            d = abs(((transit - self._transit + (1 << 31)) % (1 << 32)) - (1 << 31))
            self.jitter += (d - self.jitter) / 16
        self._transit = transit

    def sender_report_received(self, report: RtcpSenderReport, now: float) -> None:
        """Remember the SR's NTP middle bits and arrival time for LSR/DLSR."""
        self._last_sr = ((report.ntp_timestamp >> 16) & 0xFFFFFFFF, now)

    @property
    def expected(self) -> int:
        """Packets expected so far. # RFC 3550 §A.3"""
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        """Signed 24-bit cumulative loss, clamped. # RFC 3550 §6.4.1"""
        if self.ssrc is None:
            return 0
        return max(-(1 << 23), min(self.expected - self.received, (1 << 23) - 1))

    def report_blocks(self, now: float) -> tuple[RtcpReportBlock, ...]:
        """One report block for the peer's source (none before its first packet)."""
        if self.ssrc is None:
            return ()
        expected = self.expected
        expected_interval = expected - self.expected_prior
        lost_interval = expected_interval - (self.received - self.received_prior)
        self.expected_prior, self.received_prior = expected, self.received
        fraction = (lost_interval << 8) // expected_interval if expected_interval > 0 else 0
        lsr, dlsr = 0, 0
        if self._last_sr is not None:
            lsr, dlsr = self._last_sr[0], int((now - self._last_sr[1]) * 65536)
        return (
            RtcpReportBlock(
                self.ssrc,
                max(0, min(fraction, 255)),
                self.cumulative_lost,
                (self.cycles + self.max_seq) & 0xFFFFFFFF,
                int(self.jitter),
                lsr,
                dlsr & 0xFFFFFFFF,
            ),
        )


def build_report(
    ssrc: int,
    reception: RtpReceptionStats,
    *,
    now: float,
    wall_time: float,
    clock_rate: int,
    last_send: tuple[float, int] | None,
    packets_sent: int,
    octets_sent: int,
) -> RtcpSenderReport | RtcpReceiverReport:
    """SR if we have sent RTP, else RR. # RFC 3550 §6.4.1, §6.4.2

    `last_send` is (monotonic time, RTP timestamp) of our latest RTP packet; the
    SR's RTP timestamp is extrapolated from it to `now` so that it corresponds
    to the NTP timestamp taken from `wall_time`.
    """
    blocks = reception.report_blocks(now)
    if last_send is None:
        return RtcpReceiverReport(ssrc, blocks)
    sent_at, sent_ts = last_send
    rtp_ts = (sent_ts + int((now - sent_at) * clock_rate)) & 0xFFFFFFFF
    return RtcpSenderReport(
        ssrc, ntp_timestamp(wall_time), rtp_ts, packets_sent, octets_sent, blocks
    )


__all__ = ["NTP_EPOCH_OFFSET", "RtpReceptionStats", "build_report", "ntp_timestamp"]
