"""The participant's audio: a few SRTP packets out, SRTP packets in (``mrf ue --audio``).

Not a phone: :class:`UeAudio` sends ``count`` PCMU silence packets (20 ms
apart) protected with our transmit key and unprotects whatever the focus
sends with the focus's key, then reports a ``media`` event with ``sent``,
``received``, ``auth_failures`` and the ``key_mode`` (``sdes`` or
``mikey-ticket``).  Enough to show both directions are keyed correctly.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from mrf.rtp.packet import RtpPacket
from mrf.rtp.srtp import SrtpContext, SrtpDirection, SrtpRemoteError
from mrf.ue.chat import Emit

__all__ = ["UeAudio"]

PCMU_SILENCE = b"\xff" * 160  # 20 ms at 8 kHz (RFC 3551 §4.5.14)


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.owner: UeAudio | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.owner is not None:
            self.owner.received_datagram(data)


class UeAudio:
    """One SRTP audio stream of ``mrf ue``."""

    def __init__(self, host: str, emit: Emit) -> None:
        self.host = host
        self.emit = emit
        self.ssrc = secrets.randbits(32)
        self.port = 0
        self.transport: asyncio.DatagramTransport | None = None
        self._protocol = _Receiver()
        self._tx: SrtpContext | None = None
        self._rx: SrtpContext | None = None
        self.sent = 0
        self.received = 0
        self.auth_failures = 0
        self.key_mode = "none"

    async def bind(self) -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self._protocol, local_addr=(self.host, 0)
        )
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport
        self._protocol.owner = self
        self.port = int(transport.get_extra_info("sockname")[1])
        return self.port

    def set_keys(self, suite: str, tx_key_salt: bytes, rx_key_salt: bytes, key_mode: str) -> None:
        self._tx = SrtpContext(suite, tx_key_salt, SrtpDirection.OUTBOUND)
        self._rx = SrtpContext(suite, rx_key_salt, SrtpDirection.INBOUND)
        self.key_mode = key_mode

    def received_datagram(self, data: bytes) -> None:
        if self._rx is None or len(data) < 12 or data[1] in range(200, 205):  # RTCP
            return
        try:
            self._rx.unprotect(data)
        except SrtpRemoteError:
            self.auth_failures += 1
            return
        self.received += 1

    async def run(self, host: str, port: int, count: int = 25) -> None:
        """Send ``count`` packets to ``host:port``, then report a ``media`` event."""
        if self._tx is None or self.transport is None:
            return
        seq, stamp = secrets.randbelow(30000), secrets.randbits(31)
        for n in range(count):
            packet = RtpPacket(0, (seq + n) & 0xFFFF, stamp + 160 * n, self.ssrc, PCMU_SILENCE)
            self.transport.sendto(self._tx.protect(bytes(packet)), (host, port))
            self.sent += 1
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        self.emit({"event": "media", "type": "audio", "key_mode": self.key_mode,
                   "sent": self.sent, "received": self.received,
                   "auth_failures": self.auth_failures})  # fmt: skip

    def close(self) -> None:
        for context in (self._tx, self._rx):
            if context is not None:
                context.wipe()
        if self.transport is not None:
            self.transport.close()
