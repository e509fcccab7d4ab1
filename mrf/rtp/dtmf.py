"""RFC 4733 telephone-events, sans-I/O: parsed, deduplicated, reported, never mixed.

An event is sent as a series of packets with the same RTP timestamp (the
event's start), a growing duration, and the E bit on the last three
(RFC 4733 §2.5.1.4).  `RtpTelephoneEventReceiver.receive()` returns one
`TelephoneEventReceived` per event: when its first end packet arrives, or,
if every end packet was lost, when the next event starts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mrf.rtp.packet import RtpRemoteError

#: RFC 4733 §3.2 DTMF events 0-15
DTMF_NAMES = "0123456789*#ABCD"
_EVENT = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class RtpTelephoneEvent:
    """One telephone-event payload. # RFC 4733 §2.3"""

    event: int
    end: bool
    volume: int  # -dBm0, 0..63
    duration: int  # RTP timestamp units

    @classmethod
    def parse(cls, payload: bytes) -> RtpTelephoneEvent:
        """The first event block; trailing redundant blocks (RFC 4733 §2.5.1.5) ignored."""
        if len(payload) < 4:
            raise RtpRemoteError(f"telephone-event payload of {len(payload)} octets")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def name(self) -> str:
        """ "0".."9", "*", "#", "A".."D" for DTMF, else the decimal event code."""
        return DTMF_NAMES[self.event] if self.event < len(DTMF_NAMES) else str(self.event)


@dataclass(frozen=True, slots=True)
class TelephoneEventReceived:
    """A complete (or, without its end packets, superseded) event."""

    event: int
    name: str
    duration: float  # seconds
    volume: int
    ended: bool  # False when the end packets were lost


class RtpTelephoneEventReceiver:
    """Turns the packet series of RFC 4733 into one report per event."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self._current: tuple[int, RtpTelephoneEvent] | None = None  # (timestamp, latest)
        self._reported: int | None = None  # timestamp of the last reported event
        self.malformed = 0

    def receive(self, timestamp: int, payload: bytes) -> list[TelephoneEventReceived]:
        try:
            event = RtpTelephoneEvent.parse(payload)
        except RtpRemoteError:
            self.malformed += 1
            return []
        reports: list[TelephoneEventReceived] = []
        current = self._current
        if current is not None and current[0] != timestamp and self._reported != current[0]:
            reports.append(self._report(current[1], ended=False))
            self._reported = current[0]
        self._current = (timestamp, event)
        if event.end and self._reported != timestamp:
            reports.append(self._report(event, ended=True))
            self._reported = timestamp
        return reports

    def _report(self, event: RtpTelephoneEvent, *, ended: bool) -> TelephoneEventReceived:
        return TelephoneEventReceived(
            event.event, event.name, event.duration / self.clock_rate, event.volume, ended
        )


__all__ = [
    "DTMF_NAMES",
    "RtpTelephoneEvent",
    "RtpTelephoneEventReceiver",
    "TelephoneEventReceived",
]
