"""Comfort-silence source: one G.711 silence packet every 20 ms.

The schedule runs on the event loop's monotonic clock with absolute deadlines,
so it does not drift.  When the loop was late the missed 20 ms slots are not
sent in a burst; instead the RTP timestamp is advanced over them, so that the
timestamp keeps tracking the sampling clock (RFC 3550 §5.1).  The first packet
after a start has the marker bit set (RFC 3551 §4.1, start of a talkspurt).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

# RFC 3551 §4.5.14: µ-law and A-law encodings of a zero sample, 20 ms at 8 kHz
SILENCE_PAYLOADS = {"PCMU": (0, b"\xff" * 160), "PCMA": (8, b"\xd5" * 160)}
PACKET_INTERVAL = 0.020


class RtpSend(Protocol):
    """`RtpStream.send_rtp`: send one packet, then advance the timestamp."""

    def __call__(
        self, payload: bytes, pt: int, timestamp_increment: int, *, marker: bool = False
    ) -> bool: ...


class RtpSilenceGenerator:
    """Drives `send` with silence every `PACKET_INTERVAL` until `stop()`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: RtpSend,
        skip_samples: Callable[[int], None],
        codec: str = "PCMU",
    ):
        if codec not in SILENCE_PAYLOADS:
            raise ValueError(f"no silence payload for {codec!r}")
        self.codec = codec
        self._loop = loop
        self._send = send
        self._skip_samples = skip_samples
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._marker = False

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self) -> None:
        """Send the first packet now and schedule the rest."""
        self.stop()
        self._marker = True
        self._deadline = self._loop.time()
        self._tick()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        pt, payload = SILENCE_PAYLOADS[self.codec]
        if self._send(payload, pt, len(payload), marker=self._marker):
            self._marker = False
        self._deadline += PACKET_INTERVAL
        now = self._loop.time()
        if self._deadline <= now:  # late: skip missed slots, keep the clock honest
            missed = int((now - self._deadline) / PACKET_INTERVAL) + 1
            self._deadline += missed * PACKET_INTERVAL
            self._skip_samples(missed * len(payload))
        self._timer = self._loop.call_at(self._deadline, self._tick)


__all__ = ["PACKET_INTERVAL", "SILENCE_PAYLOADS", "RtpSend", "RtpSilenceGenerator"]
