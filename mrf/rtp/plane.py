"""The media plane: allocates one `RtpStream` (even/odd UDP port pair) per
participant stream from a configured port range on one host address.

Ports are handed out round-robin from the range so that a pair released a
moment ago is not reused at once (late packets of the old call then hit a
closed port instead of the next participant).  A port held by another socket
(EADDRINUSE) or forbidden (EACCES) is skipped.  Binding uses exactly the
configured host, never a wildcard chosen here.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from focus.sdp.attributes import SdpFingerprint
from mrf.rtp.dtls import (
    RtpDtlsCertificate,
    RtpDtlsKeying,
    RtpDtlsKeys,
    RtpDtlsSession,
    RtpDtlsState,
)
from mrf.rtp.ice import RtpIceAgent
from mrf.rtp.packet import RtpLocalError
from mrf.rtp.stream import OnRtp, RtpStream

logger = logging.getLogger(__name__)

DEFAULT_MAX_STREAMS = 256
_SKIPPABLE = {errno.EADDRINUSE, errno.EACCES}


class MediaPlaneError(RtpLocalError):
    """No port pair could be allocated, or the plane is misconfigured/closed."""


class MediaPlane:
    """Owns every `RtpStream` bound on `host` within `rtp_ports` (inclusive)."""

    def __init__(
        self,
        host: str,
        rtp_ports: tuple[int, int] = (40000, 40999),
        *,
        max_streams: int = DEFAULT_MAX_STREAMS,
        rtcp_interval: float = 5.0,
        srtp_keylog_file: Path | None = None,
    ):
        try:
            ipaddress.ip_address(host)
        except ValueError as exc:
            raise MediaPlaneError(f"media host must be an IP address, not {host!r}") from exc
        lo, hi = rtp_ports
        first = lo + lo % 2
        if not 0 < lo <= hi <= 65535 or first + 1 > hi:
            raise MediaPlaneError(f"RTP port range {lo}-{hi} holds no even/odd pair")
        if max_streams < 1:
            raise MediaPlaneError("max_streams must be at least 1")
        self.host = host
        self.rtp_ports = (lo, hi)
        self.max_streams = max_streams
        self.rtcp_interval = rtcp_interval
        self.srtp_keylog_file = srtp_keylog_file  # DTLS-SRTP keys, debugging only
        self._pairs = list(range(first, hi, 2))  # even RTP ports whose RTCP port fits
        self._cursor = 0
        self._streams: dict[int, RtpStream] = {}
        self._dtls_certificate: RtpDtlsCertificate | None = None
        self.closed = False

    @property
    def dtls_certificate(self) -> RtpDtlsCertificate:
        """The plane's DTLS certificate (ECDSA P-256, made on first use, memory only)."""
        if self._dtls_certificate is None:
            self._dtls_certificate = RtpDtlsCertificate.generate()
        return self._dtls_certificate

    @property
    def dtls_fingerprint(self) -> SdpFingerprint:
        """``a=fingerprint`` for answers keyed by DTLS-SRTP (RFC 8122 §5)."""
        return self.dtls_certificate.fingerprint()

    @property
    def streams(self) -> list[RtpStream]:
        return list(self._streams.values())

    def __len__(self) -> int:
        return len(self._streams)

    async def allocate(self, label: str, *, on_rtp: OnRtp | None = None) -> RtpStream:
        """Bind a new stream on the next free port pair; `MediaPlaneError` if none."""
        if self.closed:
            raise MediaPlaneError("media plane is closed")
        if len(self._streams) >= self.max_streams:
            raise MediaPlaneError(f"stream cap of {self.max_streams} reached")
        for _ in range(len(self._pairs)):
            port = self._pairs[self._cursor]
            self._cursor = (self._cursor + 1) % len(self._pairs)
            if port in self._streams:
                continue
            stream = RtpStream(label, on_rtp=on_rtp, rtcp_interval=self.rtcp_interval)
            try:
                await stream.bind(self.host, port)
            except OSError as exc:
                if exc.errno not in _SKIPPABLE:
                    raise MediaPlaneError(f"cannot bind {self.host}:{port}: {exc}") from exc
                logger.debug("port pair %d/%d unavailable: %s", port, port + 1, exc)
                continue
            self._streams[port] = stream
            return stream
        raise MediaPlaneError(f"no free RTP port pair in {self.rtp_ports[0]}-{self.rtp_ports[1]}")

    def configure_transport(
        self, stream: RtpStream, plan: Any, *, on_failed: Callable[[str], None] | None = None
    ) -> None:
        """ICE (`mrf.rtp.ice`) and DTLS-SRTP keying (`mrf.rtp.dtls`) of one accepted
        stream plan (`focus.sdp.offer_answer.SdpStreamPlan`).

        A re-offer with the same ICE credentials and DTLS parameters changes
        nothing (the association goes on); new ones replace the old agent or
        association (ICE restart, new DTLS keys).  With both, DTLS starts once
        ICE has nominated a pair (RFC 5763 §5 over RFC 8445).  ``on_failed(reason)``
        is called when the DTLS handshake fails (the focus then hangs up).
        """
        ice = plan.ice if plan.ice is not None and not plan.ice.mismatch else None
        if stream.ice is not None and not stream.ice.same_session(ice):
            stream.ice.close()  # ICE restart: new credentials (RFC 8839 §4.4.1.1.1)
            stream.ice = None
        if stream.keying is not None and stream.keying.plan != plan.dtls:
            stream.keying.close()
            stream.keying = None
        if plan.dtls is not None and stream.keying is None:
            session = RtpDtlsSession(
                self.dtls_certificate,
                client=plan.dtls.client,
                fingerprints=plan.dtls.remote_fingerprints,
            )
            key_log = self._log_keys if self.srtp_keylog_file is not None else None
            stream.keying = RtpDtlsKeying(stream, session, on_failed=on_failed, key_log=key_log)
            stream.keying.plan = plan.dtls
            if ice is None:
                stream.keying.start()
        if ice is not None and stream.ice is None:
            stream.ice = RtpIceAgent(
                stream, ice, rtcp_mux=plan.rtcp_mux, on_connected=lambda: _start_dtls(stream)
            )
            stream.ice.start()

    def _log_keys(self, stream: RtpStream, keys: RtpDtlsKeys) -> None:
        """One line per DTLS-SRTP association: ``DTLS-SRTP <local RTP port> <suite>
        <rx key||salt hex> <tx key||salt hex>`` (``tls.srtp_keylog_file``, opt-in)."""
        assert self.srtp_keylog_file is not None
        line = (
            f"DTLS-SRTP {stream.rtp_port} {keys.suite} "
            f"{bytes(keys.rx_key_salt).hex()} {bytes(keys.tx_key_salt).hex()}\n"
        )
        with self.srtp_keylog_file.open("a") as out:
            out.write(line)

    def release(self, stream: RtpStream) -> None:
        """Close the stream (keys wiped, sockets closed) and free its port pair."""
        if self._streams.get(stream.rtp_port) is stream:
            del self._streams[stream.rtp_port]
        stream.close()

    def close(self) -> None:
        """Release every stream; no allocation afterwards."""
        self.closed = True
        for stream in list(self._streams.values()):
            self.release(stream)

    async def wait_closed(self) -> None:
        """Close and wait until every socket is really closed."""
        streams = list(self._streams.values())
        self.close()
        for stream in streams:
            await stream.wait_closed()


def _start_dtls(stream: RtpStream) -> None:
    """ICE is up: a DTLS client may now send its ClientHello to the nominated pair."""
    keying = stream.keying
    if keying is not None and keying.state is RtpDtlsState.NEW:
        keying.start()
