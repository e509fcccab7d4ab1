"""RTP and RTCP packet codecs (sans-I/O), RFC 3550.

Error tree::

    RtpError
    ├── RtpLocalError    our misuse (bad field value when building)
    └── RtpRemoteError   the peer sent something malformed

`RtpPacket.parse(data)` / `bytes(packet)` handle the fixed header, CSRC list,
header extension and padding (RFC 3550 §5.1, §5.3.1).  `parse_rtcp(data)`
splits a compound RTCP packet (RFC 3550 §6.1) and decodes SR, RR, SDES and
BYE (§6.4.1, §6.4.2, §6.5, §6.6); other types (APP, RFC 4585 feedback) are
kept opaque.  `is_rtcp(data)` is the RFC 5761 §4 demultiplexing test.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
MAX_CSRC_COUNT = 15


class RtpError(Exception):
    """Base class of RTP/RTCP codec errors."""


class RtpLocalError(RtpError):
    """Our own misuse: a field out of range when building a packet."""


class RtpRemoteError(RtpError):
    """The peer's fault: malformed RTP or RTCP bytes."""


_FIXED_HEADER = struct.Struct("!BBHII")  # RFC 3550 §5.1


class RtcpPacketType(IntEnum):
    """RTCP packet types. # RFC 3550 §12.1, RFC 4585 §6.1"""

    SR = 200
    RR = 201
    SDES = 202
    BYE = 203
    APP = 204
    RTPFB = 205
    PSFB = 206


class RtcpSdesItemType(IntEnum):
    """SDES item types. # RFC 3550 §12.2"""

    END = 0
    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: a packet whose second octet is 192..223 is RTCP, else RTP.

    This covers SR/RR/SDES/BYE/APP (200-204) and the RFC 4585 feedback types;
    RTP payload types 64-95 (which would collide with a marker bit) are not
    used in this server.
    """
    return len(data) >= 2 and 192 <= data[1] <= 223


def _check_range(name: str, value: int, bits: int) -> None:
    if not 0 <= value < (1 << bits):
        raise RtpLocalError(f"{name} {value} does not fit in {bits} bits")


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. # RFC 3550 §5.1"""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""
    padding_size: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Decode an RTP packet; raise `RtpRemoteError` on malformed input."""
        if len(data) < RTP_HEADER_SIZE:
            raise RtpRemoteError(f"RTP packet too short ({len(data)} bytes)")
        first, second, seq, ts, ssrc = _FIXED_HEADER.unpack_from(data)
        if first == 0x80:  # the usual packet: no padding, extension or CSRC
            payload = bytes(data[RTP_HEADER_SIZE:])
            return cls(second & 0x7F, seq, ts, ssrc, payload, second > 0x7F)
        if first >> 6 != RTP_VERSION:
            raise RtpRemoteError(f"bad RTP version {first >> 6}")
        pos = RTP_HEADER_SIZE + 4 * (first & 0x0F)
        if len(data) < pos:
            raise RtpRemoteError("RTP CSRC list truncated")
        csrc = struct.unpack_from(f"!{first & 0x0F}I", data, RTP_HEADER_SIZE)
        profile: int | None = None
        extension = b""
        if first & 0x10:  # RFC 3550 §5.3.1
            if len(data) < pos + 4:
                raise RtpRemoteError("RTP header extension truncated")
            profile, words = struct.unpack_from("!HH", data, pos)
            end = pos + 4 + 4 * words
            if len(data) < end:
                raise RtpRemoteError("RTP header extension truncated")
            extension = bytes(data[pos + 4 : end])
            pos = end
        padding = 0
        if first & 0x20:  # RFC 3550 §5.1 P bit: last octet counts padding
            padding = data[-1] if len(data) > pos else 0
            if padding == 0 or pos + padding > len(data):
                raise RtpRemoteError(f"bad RTP padding length {padding}")
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos : len(data) - padding]),
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension_profile=profile,
            extension=extension,
            padding_size=padding,
        )

    def __bytes__(self) -> bytes:
        """Encode; raise `RtpLocalError` if a field is out of range."""
        self._validate()
        first = RTP_VERSION << 6 | len(self.csrc)
        if self.padding_size:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [
            struct.pack("!BBHII", first, second, self.sequence_number, self.timestamp, self.ssrc),
            struct.pack(f"!{len(self.csrc)}I", *self.csrc),
        ]
        if self.extension_profile is not None:
            parts.append(struct.pack("!HH", self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding_size:
            parts.append(bytes(self.padding_size - 1) + bytes([self.padding_size]))
        return b"".join(parts)

    def _validate(self) -> None:
        _check_range("payload type", self.payload_type, 7)
        _check_range("sequence number", self.sequence_number, 16)
        _check_range("timestamp", self.timestamp, 32)
        _check_range("SSRC", self.ssrc, 32)
        if len(self.csrc) > MAX_CSRC_COUNT:
            raise RtpLocalError(f"{len(self.csrc)} CSRCs, at most {MAX_CSRC_COUNT}")
        for csrc in self.csrc:
            _check_range("CSRC", csrc, 32)
        if self.extension_profile is not None:
            _check_range("extension profile", self.extension_profile, 16)
            if len(self.extension) % 4 or len(self.extension) // 4 >= 1 << 16:
                raise RtpLocalError("header extension must be whole 32-bit words, < 2^16")
        _check_range("padding size", self.padding_size, 8)


# --- RTCP ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RtcpReportBlock:
    """One reception report block, 24 octets. # RFC 3550 §6.4.1"""

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int
    delay_since_last_sr: int

    @classmethod
    def parse(cls, data: bytes, pos: int) -> RtcpReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, pos)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:  # signed 24-bit cumulative loss
            lost -= 1 << 24
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        _check_range("fraction lost", self.fraction_lost, 8)
        if not -(1 << 23) <= self.packets_lost < 1 << 23:
            raise RtpLocalError(f"cumulative loss {self.packets_lost} out of range")
        lost_word = self.fraction_lost << 24 | (self.packets_lost & 0xFFFFFF)
        return struct.pack(
            "!IIIIII",
            self.ssrc,
            lost_word,
            self.highest_sequence,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        )


@dataclass(frozen=True, slots=True)
class RtcpSenderReport:
    """SR: sender info plus report blocks. # RFC 3550 §6.4.1"""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[RtcpReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = struct.pack(
            "!IQIII",
            self.ssrc,
            self.ntp_timestamp,
            self.rtp_timestamp,
            self.packet_count & 0xFFFFFFFF,
            self.octet_count & 0xFFFFFFFF,
        )
        body += b"".join(bytes(r) for r in self.reports)
        return _rtcp_header(RtcpPacketType.SR, len(self.reports), body) + body


@dataclass(frozen=True, slots=True)
class RtcpReceiverReport:
    """RR: report blocks only. # RFC 3550 §6.4.2"""

    ssrc: int
    reports: tuple[RtcpReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(bytes(r) for r in self.reports)
        return _rtcp_header(RtcpPacketType.RR, len(self.reports), body) + body


@dataclass(frozen=True, slots=True)
class RtcpSourceDescription:
    """SDES: per-source chunks of (item type, value). # RFC 3550 §6.5"""

    chunks: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]

    def __bytes__(self) -> bytes:
        body = b""
        for ssrc, items in self.chunks:
            chunk = struct.pack("!I", ssrc)
            for item_type, value in items:
                _check_range("SDES item length", len(value), 8)
                chunk += struct.pack("!BB", item_type, len(value)) + value
            chunk += bytes(4 - len(chunk) % 4)  # END item plus padding to 32 bits
            body += chunk
        return _rtcp_header(RtcpPacketType.SDES, len(self.chunks), body) + body


@dataclass(frozen=True, slots=True)
class RtcpBye:
    """BYE: sources leaving, optional reason. # RFC 3550 §6.6"""

    sources: tuple[int, ...]
    reason: bytes = b""

    def __bytes__(self) -> bytes:
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason:
            _check_range("BYE reason length", len(self.reason), 8)
            body += bytes([len(self.reason)]) + self.reason
            body += bytes(-len(body) % 4)
        return _rtcp_header(RtcpPacketType.BYE, len(self.sources), body) + body


@dataclass(frozen=True, slots=True)
class RtcpUnknown:
    """Any other RTCP packet (APP, feedback), kept as raw body."""

    packet_type: int
    count: int
    body: bytes = field(default=b"")

    def __bytes__(self) -> bytes:
        return _rtcp_header(self.packet_type, self.count, self.body) + self.body


type RtcpPacket = (
    RtcpSenderReport | RtcpReceiverReport | RtcpSourceDescription | RtcpBye | RtcpUnknown
)


def _rtcp_header(packet_type: int, count: int, body: bytes) -> bytes:
    """Common RTCP header; length is in 32-bit words minus one. # RFC 3550 §6.4.1"""
    _check_range("RTCP count", count, 5)
    if len(body) % 4:
        raise RtpLocalError("RTCP body must be whole 32-bit words")
    return struct.pack("!BBH", RTP_VERSION << 6 | count, packet_type, len(body) // 4)


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Split and decode a compound RTCP packet. # RFC 3550 §6.1, §A.2

    Every packet must have version 2 and a length that stays inside the
    datagram; only the last packet may carry padding.
    """
    packets: list[RtcpPacket] = []
    pos = 0
    if len(data) < 4:
        raise RtpRemoteError(f"RTCP packet too short ({len(data)} bytes)")
    while pos < len(data):
        if len(data) - pos < 4:
            raise RtpRemoteError("trailing bytes after RTCP packet")
        first, packet_type, words = struct.unpack_from("!BBH", data, pos)
        end = pos + 4 * (words + 1)
        if first >> 6 != RTP_VERSION:
            raise RtpRemoteError(f"bad RTCP version {first >> 6}")
        if end > len(data):
            raise RtpRemoteError("RTCP length field runs past the datagram")
        body = bytes(data[pos + 4 : end])
        if first & 0x20:
            # the padding count "will be a multiple of four" (RFC 3550 §6.4.1)
            if end != len(data) or not body or not 0 < body[-1] <= len(body) or body[-1] % 4:
                raise RtpRemoteError("bad RTCP padding")
            body = body[: -body[-1]]
        packets.append(_parse_one(packet_type, first & 0x1F, body))
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    try:
        if packet_type == RtcpPacketType.SR:
            return _parse_sr(count, body)
        if packet_type == RtcpPacketType.RR:
            return _parse_rr(count, body)
        if packet_type == RtcpPacketType.SDES:
            return _parse_sdes(count, body)
        if packet_type == RtcpPacketType.BYE:
            return _parse_bye(count, body)
    except struct.error as exc:
        raise RtpRemoteError(f"truncated RTCP packet type {packet_type}") from exc
    return RtcpUnknown(packet_type, count, body)


def _parse_blocks(count: int, body: bytes, pos: int) -> tuple[RtcpReportBlock, ...]:
    if len(body) < pos + 24 * count:
        raise RtpRemoteError(f"{count} report blocks do not fit in the RTCP packet")
    return tuple(RtcpReportBlock.parse(body, pos + 24 * i) for i in range(count))


def _parse_sr(count: int, body: bytes) -> RtcpSenderReport:
    ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", body)
    reports = _parse_blocks(count, body, 24)
    return RtcpSenderReport(ssrc, ntp, rtp_ts, packets, octets, reports)


def _parse_rr(count: int, body: bytes) -> RtcpReceiverReport:
    (ssrc,) = struct.unpack_from("!I", body)
    return RtcpReceiverReport(ssrc, _parse_blocks(count, body, 4))


def _parse_sdes(count: int, body: bytes) -> RtcpSourceDescription:
    chunks = []
    pos = 0
    for _ in range(count):
        (ssrc,) = struct.unpack_from("!I", body, pos)
        pos += 4
        items = []
        while True:
            if pos >= len(body):
                raise RtpRemoteError("SDES chunk without END item")
            item_type = body[pos]
            if item_type == RtcpSdesItemType.END:
                pos = (pos + 4) & ~3  # skip END and the padding to a word boundary
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise RtpRemoteError("SDES item runs past the packet")
            items.append((item_type, body[pos + 2 : pos + 2 + body[pos + 1]]))
            pos += 2 + body[pos + 1]
        chunks.append((ssrc, tuple(items)))
    return RtcpSourceDescription(tuple(chunks))


def _parse_bye(count: int, body: bytes) -> RtcpBye:
    sources = struct.unpack_from(f"!{count}I", body)
    pos = 4 * count
    reason = b""
    if pos < len(body):
        length = body[pos]
        if pos + 1 + length > len(body):
            raise RtpRemoteError("BYE reason runs past the packet")
        reason = body[pos + 1 : pos + 1 + length]
    return RtcpBye(tuple(sources), reason)
