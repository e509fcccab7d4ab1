"""Media plane: RTP/RTCP codecs, per-participant SRTP, UDP streams, port allocation.

See `docs/architecture.md` (Media plane).  `packet` and `reception` are
sans-I/O; `srtp` wraps pylibsrtp; `silence` paces comfort noise on a loop
clock; `stream` and `plane` are the asyncio adapters.
"""

from mrf.rtp.packet import (
    RtcpPacketType,
    RtpError,
    RtpLocalError,
    RtpPacket,
    RtpRemoteError,
    is_rtcp,
    parse_rtcp,
)
from mrf.rtp.plane import MediaPlane, MediaPlaneError
from mrf.rtp.srtp import (
    SRTP_SUITES,
    SrtpAuthError,
    SrtpContext,
    SrtpDirection,
    SrtpError,
    SrtpLocalError,
    SrtpRemoteError,
    SrtpReplayError,
    SrtpSuite,
    mki_supported,
)
from mrf.rtp.stream import RtpStream

__all__ = [
    "SRTP_SUITES",
    "MediaPlane",
    "MediaPlaneError",
    "RtcpPacketType",
    "RtpError",
    "RtpLocalError",
    "RtpPacket",
    "RtpRemoteError",
    "RtpStream",
    "SrtpAuthError",
    "SrtpContext",
    "SrtpDirection",
    "SrtpError",
    "SrtpLocalError",
    "SrtpRemoteError",
    "SrtpReplayError",
    "SrtpSuite",
    "is_rtcp",
    "mki_supported",
    "parse_rtcp",
]
