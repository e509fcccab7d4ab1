"""One participant media stream: an RTP/RTCP UDP socket pair with SRTP.

`RtpStream` binds RTP on an even port and RTCP on port+1 (RFC 3550 §11) and
also accepts RTCP multiplexed on the RTP port (RFC 5761 §4).  Inbound packets
are unprotected with the participant's own receive key; authenticated RTP is
counted and handed to `on_rtp` (the mixer's hook, `mrf.rtp.conference`).  Outbound media goes
through `send_rtp()`, which packs the header into the SRTP context's reused buffer,
protects it in place and sends it with ``sendto`` on a non-blocking duplicate of
the RTP socket (no asyncio transport buffering: a full socket buffer drops the
packet and counts it, as a congested link would); a comfort-silence generator
(G.711, RFC 3551 §4.5.14) can drive it on a 20 ms monotonic schedule
(`mrf.rtp.silence`).  An SR or RR compound with SDES CNAME is sent every ~5 s
(RFC 3550 §6.2, §6.4), protected with SRTCP.

Symmetric RTP (RFC 4961): replies go to the source address of the first
authenticated packet, which may differ from the signalled one behind a NAT.

Key sources are pluggable: SDES and MIKEY call `set_keys()` from the
signalling; DTLS-SRTP (`mrf.rtp.dtls`) and ICE (`mrf.rtp.ice`) run on the
stream's own sockets.  Datagrams are demultiplexed by their first byte
(RFC 7983 §7): 0-3 STUN → `stun_handler`, 20-63 DTLS → `dtls_handler`,
128-191 RTP/RTCP.  Until ICE has nominated a pair the stream has no remote and
sends nothing (`set_ice_remote`); until DTLS has keyed it, nothing is accepted.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from focus.sdp.secret import SecretBytes
from mrf.rtp.packet import (
    RtcpBye,
    RtcpPacket,
    RtcpSdesItemType,
    RtcpSenderReport,
    RtcpSourceDescription,
    RtpError,
    RtpPacket,
    is_rtcp,
    parse_rtcp,
)
from mrf.rtp.reception import RtpReceptionStats, build_report, ntp_timestamp
from mrf.rtp.silence import SILENCE_PAYLOADS, RtpSilenceGenerator
from mrf.rtp.srtp import (
    SrtpAuthError,
    SrtpContext,
    SrtpDirection,
    SrtpError,
    SrtpReplayError,
    SrtpSuite,
)

logger = logging.getLogger(__name__)

type Address = tuple[str, int]
type OnRtp = Callable[[RtpStream, RtpPacket], None]
type OnDtls = Callable[[bytes, Address], None]
type OnStun = Callable[[bytes, Address, int], None]  # datagram, source, ICE component

_COUNTERS = (  # RtpStream attributes reported by stats()
    "packets_in bytes_in packets_out bytes_out auth_failures replays malformed unkeyed "
    "rtcp_in rtcp_out send_drops send_errors"
).split()


def _key_id(
    suite: str, rx: SecretBytes | bytes, tx: SecretBytes | bytes, mki: bytes | None
) -> bytes:
    """A digest that tells whether a re-key brings the same keys (no copy of them made)."""
    digest = hashlib.sha256(suite.encode())
    for part in (rx, tx, mki or b""):
        data = part.view() if isinstance(part, SecretBytes) else part
        digest.update(len(data).to_bytes(2, "big"))
        digest.update(data)
    return digest.digest()


class _StreamProtocol(asyncio.DatagramProtocol):
    """Feeds datagrams from one of the stream's two sockets into the stream."""

    def __init__(self, stream: RtpStream, *, rtcp_port: bool):
        self.stream = stream
        self.rtcp_port = rtcp_port
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.stream._datagram_received(data, (addr[0], addr[1]), rtcp_port=self.rtcp_port)

    def error_received(self, exc: Exception) -> None:
        self.stream.log.debug("socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class RtpStream:
    """RTP/RTCP socket pair with per-participant SRTP contexts and counters."""

    def __init__(
        self,
        label: str,
        *,
        on_rtp: OnRtp | None = None,
        clock_rate: int = 8000,
        rtcp_interval: float = 5.0,
        max_packet_size: int = 1500,
    ):
        self.label = label
        self.on_rtp = on_rtp
        self.clock_rate = clock_rate
        self.rtcp_interval = rtcp_interval
        self.max_packet_size = max_packet_size
        self.log = logging.LoggerAdapter(logger, {"stream": label})
        self.host = ""
        self.rtp_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transports: list[asyncio.DatagramTransport] = []
        self._rtp_socket: socket.socket | None = None  # send path: a dup of the RTP socket
        self._protocols: list[_StreamProtocol] = []
        self._rx: SrtpContext | None = None
        self._tx: SrtpContext | None = None
        self._key_id = b""  # SHA-256 over the installed keys, to spot an unchanged re-key
        self._rtp_remote: Address | None = None
        self._rtcp_remote: Address | None = None
        self._latched = False
        self._rtcp_latched = False
        self.ssrc = secrets.randbits(32)
        self.cname = f"{secrets.token_hex(8)}@mrf".encode()
        self._seq = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._last_send: tuple[float, int] | None = None  # (monotonic time, timestamp)
        self._reception = RtpReceptionStats(clock_rate)
        self._silence: RtpSilenceGenerator | None = None
        self._rtcp_timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.packets_in = self.bytes_in = self.packets_out = self.bytes_out = 0
        self.auth_failures = self.replays = self.malformed = self.unkeyed = 0
        self.rtcp_in = self.rtcp_out = 0
        self.send_drops = self.send_errors = 0
        self.dtls_handler: OnDtls | None = None  # mrf.rtp.dtls.RtpDtlsKeying
        self.stun_handler: OnStun | None = None  # mrf.rtp.ice.RtpIceAgent
        self.keying: Any = None  # the DTLS keying driving this stream, if any
        self.ice: Any = None  # the ICE agent of this stream, if any
        self._closers: list[Callable[[], None]] = []

    # --- set-up ---------------------------------------------------------------------------

    async def bind(self, host: str, rtp_port: int) -> None:
        """Bind RTP on `rtp_port` (even) and RTCP on `rtp_port + 1`; OSError if taken."""
        if rtp_port % 2:
            raise ValueError(f"RTP port {rtp_port} must be even (RFC 3550 §11)")
        loop = asyncio.get_running_loop()
        try:
            for port, rtcp in ((rtp_port, False), (rtp_port + 1, True)):
                transport, protocol = await loop.create_datagram_endpoint(
                    functools.partial(_StreamProtocol, self, rtcp_port=rtcp),
                    local_addr=(host, port),
                )
                self._transports.append(transport)
                self._protocols.append(protocol)
        except OSError:
            self._close_transports()
            raise
        self._loop, self.host, self.rtp_port = loop, host, rtp_port
        bound = self._transports[0].get_extra_info("socket")
        self._rtp_socket = socket.socket(bound.family, bound.type, fileno=os.dup(bound.fileno()))
        self._rtp_socket.setblocking(False)
        self._schedule_rtcp()
        self.log.debug("[%s] bound RTP %s:%d RTCP %d", self.label, host, rtp_port, rtp_port + 1)

    @property
    def rtcp_port(self) -> int:
        return self.rtp_port + 1

    @property
    def suite(self) -> SrtpSuite | None:
        return self._rx.suite if self._rx else None

    @property
    def remote_rtp(self) -> Address | None:
        return self._rtp_remote

    @property
    def remote_rtcp(self) -> Address | None:
        return self._rtcp_remote

    def set_keys(
        self,
        suite: SrtpSuite | str,
        rx_key_salt: SecretBytes | bytes,
        tx_key_salt: SecretBytes | bytes,
        *,
        rx_mki: bytes | None = None,
    ) -> None:
        """(Re-)key: wipe the old contexts first, then build new ones. Keys are not logged.

        The contexts borrow ``SecretBytes`` keys (the plan's objects, wiped with
        the contexts); ``bytes`` keys get a holder each.  `rx_mki` is the MKI the
        peer's SRTP/SRTCP carries (RFC 4568 §6.1); ours never carries one.  On
        `SrtpLocalError` the stream is left unkeyed.
        """
        key_id = _key_id(str(getattr(suite, "name", suite)), rx_key_salt, tx_key_salt, rx_mki)
        if self._rx is not None and key_id == self._key_id:
            return  # same keys (a re-offer kept them): the contexts, ROC and replay list go on
        self._wipe_keys()
        rx = SrtpContext(suite, rx_key_salt, SrtpDirection.INBOUND, rx_mki=rx_mki)
        try:
            tx = SrtpContext(suite, tx_key_salt, SrtpDirection.OUTBOUND)
        except SrtpError:
            rx.wipe()
            raise
        self._rx, self._tx, self._key_id = rx, tx, key_id
        self.log.debug(
            "[%s] SRTP keyed suite=%s rx_key_len=%d tx_key_len=%d rx_mki_len=%d",
            self.label,
            rx.suite.name,
            rx.key_length,
            tx.key_length,
            len(rx_mki or b""),
        )

    def set_clock_rate(self, clock_rate: int) -> None:
        """RTP clock of the negotiated codec: jitter and SR timestamps use it (RFC 3550 §6.4.1)."""
        if clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        self.clock_rate = clock_rate
        self._reception.clock_rate = clock_rate

    @property
    def packets_lost(self) -> int:
        """Cumulative packets lost from the peer (RFC 3550 §6.4.1, may be negative)."""
        return self._reception.cumulative_lost

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter of the peer's RTP in milliseconds (RFC 3550 §A.8)."""
        return round(self._reception.jitter * 1000 / self.clock_rate, 3)

    def set_ice_remote(self, rtp: Address, rtcp: Address) -> None:
        """The nominated ICE pairs' remote addresses (RFC 8445 §12): no latching after."""
        self._rtp_remote, self._rtcp_remote = rtp, rtcp
        self._latched = self._rtcp_latched = True

    def send_raw(self, data: bytes, addr: Address, *, rtcp_port: bool = False) -> None:
        """Send a non-RTP datagram (DTLS, STUN) from the RTP (or RTCP) socket."""
        if not self.closed and self._transports:
            self._transports[1 if rtcp_port else 0].sendto(data, addr)

    def transport(self, rtcp_port: bool = False) -> asyncio.DatagramTransport:
        """The RTP (or RTCP) socket's transport (ICE binds its checks to it)."""
        return self._transports[1 if rtcp_port else 0]

    def add_closer(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` when the stream closes (DTLS and ICE tear-down)."""
        self._closers.append(closer)

    def set_remote(self, host: str, rtp_port: int, rtcp_port: int | None = None) -> None:
        """Signalled peer address; `rtcp_port == rtp_port` means rtcp-mux (RFC 5761)."""
        self._rtp_remote = (host, rtp_port)
        self._rtcp_remote = (host, rtp_port + 1 if rtcp_port is None else rtcp_port)
        self._latched = self._rtcp_latched = False

    # --- receive path ---------------------------------------------------------------------

    def _datagram_received(self, data: bytes, addr: Address, *, rtcp_port: bool) -> None:
        if self.closed or not data:
            return
        first = data[0]
        if first < 4 and self.stun_handler is not None:  # RFC 7983 §7
            self.stun_handler(data, addr, 2 if rtcp_port else 1)
        elif 20 <= first < 64 and self.dtls_handler is not None:
            self.dtls_handler(data, addr)
        elif len(data) > self.max_packet_size or len(data) < 8:
            self.malformed += 1
        elif rtcp_port or is_rtcp(data):
            self._rtcp_received(data, addr, muxed=not rtcp_port)
        else:
            self._rtp_received(data, addr)

    def _unprotect(self, data: bytes, *, rtcp: bool) -> bytes | None:
        if self._rx is None:
            self.unkeyed += 1
            return None
        try:
            return self._rx.unprotect_rtcp(data) if rtcp else self._rx.unprotect(data)
        except SrtpAuthError:
            self.auth_failures += 1
        except SrtpReplayError:
            self.replays += 1
        except SrtpError:
            self.malformed += 1
        return None

    def _rtp_received(self, data: bytes, addr: Address) -> None:
        if data[0] >> 6 != 2 or len(data) < 12:
            self.malformed += 1
            return
        plain = self._unprotect(data, rtcp=False)
        if plain is None:
            return
        try:
            packet = RtpPacket.parse(plain)
        except RtpError:
            self.malformed += 1
            return
        self._latch(addr)
        self.packets_in += 1
        self.bytes_in += len(packet.payload)
        self._reception.update(packet, time.monotonic())
        if self.on_rtp is not None:
            try:
                self.on_rtp(self, packet)
            except Exception:
                self.log.exception("[%s] on_rtp callback failed", self.label)

    def _latch(self, addr: Address) -> None:
        """RFC 4961 symmetric RTP: send to where authenticated media comes from."""
        if self._latched:
            return
        if addr != self._rtp_remote:
            self.log.info(
                "[%s] latched RTP to %s:%d (signalled %s)", self.label, *addr, self._rtp_remote
            )
        muxed = self._rtcp_remote is not None and self._rtcp_remote == self._rtp_remote
        self._latched = True
        self._rtp_remote = addr
        if muxed and not self._rtcp_latched:  # rtcp-mux: RTCP follows the RTP latch
            self._rtcp_remote = addr

    def _rtcp_received(self, data: bytes, addr: Address, *, muxed: bool) -> None:
        plain = self._unprotect(data, rtcp=True)
        if plain is None:
            return
        try:
            packets = parse_rtcp(plain)
        except RtpError:
            self.malformed += 1
            return
        self.rtcp_in += 1
        if not self._rtcp_latched:
            self._rtcp_latched = True
            if self._rtcp_remote != addr:
                self.log.info("[%s] latched RTCP to %s:%d mux=%s", self.label, *addr, muxed)
            self._rtcp_remote = addr
        self._note_rtcp(packets)

    def _note_rtcp(self, packets: list[RtcpPacket]) -> None:
        for packet in packets:
            if isinstance(packet, RtcpSenderReport):
                self._reception.sender_report_received(packet, time.monotonic())
            elif isinstance(packet, RtcpBye):
                self.log.info("[%s] peer sent RTCP BYE", self.label)

    # --- send path ------------------------------------------------------------------------

    def send_rtp(
        self, payload: bytes, pt: int, timestamp_increment: int, *, marker: bool = False
    ) -> bool:
        """Protect and send one RTP packet; the timestamp then advances by the increment.

        Returns False (and sends nothing) while unkeyed, without a remote, or closed.
        """
        if self.closed or self._tx is None or self._rtp_remote is None:
            return False
        if not 0 <= pt <= 127:
            raise ValueError(f"RTP payload type {pt} out of range")
        packet = self._tx.protect_rtp(
            pt | (0x80 if marker else 0), self._seq, self._timestamp, self.ssrc, payload
        )  # what bytes(RtpPacket(...)) gives without CSRC or extension, protected in place
        try:
            self._rtp_socket.sendto(packet, self._rtp_remote)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            self.send_drops += 1  # socket buffer full: lost, as on a congested link
        except OSError as exc:  # e.g. ICMP unreachable reported on a later send
            self.send_errors += 1
            self.log.debug("[%s] RTP send failed: %s", self.label, exc)
        self._last_send = (time.monotonic(), self._timestamp)
        self._seq = (self._seq + 1) & 0xFFFF
        self._timestamp = (self._timestamp + timestamp_increment) & 0xFFFFFFFF
        self.packets_out += 1
        self.bytes_out += len(payload)
        return True

    def start_silence(self, codec: str = "PCMU") -> None:
        """Send G.711 silence every 20 ms until `stop_silence()` (one generator per stream)."""
        if self._loop is None:
            raise RuntimeError("stream is not bound")
        generator = RtpSilenceGenerator(self._loop, self.send_rtp, self.skip_samples, codec)
        self.stop_silence()
        self._silence = generator
        generator.start()

    def stop_silence(self) -> None:
        if self._silence is not None:
            self._silence.stop()
            self._silence = None

    def skip_samples(self, samples: int) -> None:
        """Advance the RTP timestamp over media not sent (RFC 3550 §5.1)."""
        self._timestamp = (self._timestamp + samples) & 0xFFFFFFFF

    def _schedule_rtcp(self) -> None:
        """RFC 3550 §6.3.1: randomised interval in [0.5, 1.5] x the nominal one."""
        assert self._loop is not None
        delay = self.rtcp_interval * random.uniform(0.5, 1.5)
        self._rtcp_timer = self._loop.call_later(delay, self._rtcp_tick)

    def _rtcp_tick(self) -> None:
        self.send_rtcp_report()
        self._schedule_rtcp()

    def send_rtcp_report(self, *, bye: bool = False) -> bool:
        """Send SR (or RR before any RTP) + SDES CNAME [+ BYE], SRTCP-protected."""
        if self.closed or self._tx is None or self._rtcp_remote is None:
            return False
        sdes = RtcpSourceDescription(((self.ssrc, ((RtcpSdesItemType.CNAME, self.cname),)),))
        report = build_report(
            self.ssrc,
            self._reception,
            now=time.monotonic(),
            wall_time=time.time(),
            clock_rate=self.clock_rate,
            last_send=self._last_send,
            packets_sent=self.packets_out,
            octets_sent=self.bytes_out,
        )
        compound = bytes(report) + bytes(sdes)
        if bye:
            compound += bytes(RtcpBye((self.ssrc,)))
        muxed = self._rtp_remote is not None and self._rtcp_remote == self._rtp_remote
        transport = self._transports[0 if muxed else 1]
        transport.sendto(self._tx.protect_rtcp(compound), self._rtcp_remote)
        self.rtcp_out += 1
        return True

    # --- teardown -------------------------------------------------------------------------

    def _wipe_keys(self) -> None:
        for context in (self._rx, self._tx):
            if context is not None:
                context.wipe()
        self._rx = self._tx = None

    def _close_transports(self) -> None:
        if self._rtp_socket is not None:
            self._rtp_socket.close()
            self._rtp_socket = None
        for transport in self._transports:
            transport.close()
        self._transports = []

    def close(self) -> None:
        """Send RTCP BYE (RFC 3550 §6.3.7), stop timers, wipe keys, close both sockets."""
        if self.closed:
            return
        try:
            self.send_rtcp_report(bye=True)
        except (SrtpError, OSError) as exc:
            self.log.debug("[%s] BYE not sent: %s", self.label, exc)
        for closer in self._closers:  # DTLS close_notify still goes out
            try:
                closer()
            except Exception:
                self.log.exception("[%s] close hook failed", self.label)
        self._closers.clear()
        self.closed = True
        self.stop_silence()
        if self._rtcp_timer is not None:
            self._rtcp_timer.cancel()
        self._wipe_keys()
        self._close_transports()
        self.log.debug("[%s] closed %s", self.label, self.stats())

    async def wait_closed(self) -> None:
        """Wait until both sockets are really closed (ports free again)."""
        await asyncio.gather(*(p.closed for p in self._protocols))

    def stats(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "rtp_port": self.rtp_port,
            "suite": self.suite.name if self.suite else None,
            **{name: getattr(self, name) for name in _COUNTERS},
            "lost": self._reception.cumulative_lost,
            "jitter_ms": self.jitter_ms,
        }


__all__ = ["SILENCE_PAYLOADS", "OnRtp", "RtpReceptionStats", "RtpStream", "ntp_timestamp"]
