"""One participant's call at the focus: its dialog, its SDP plan and its media streams.

Keys are per participant and per stream (TS 33.328 G.1): every accepted audio
m-line gets its own :class:`~mrf.rtp.stream.RtpStream` keyed with the offerer's
SDES key (inbound) and a fresh key of ours (outbound).  Nothing here is shared
between two calls.  On re-key the stream wipes the old contexts before installing
the new ones; on hang-up the streams are released, which wipes their keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from focus.conference import ConferenceInfo
from focus.policy import CallerIdentity
from focus.sdp.attributes import SdpDirection
from focus.sdp.offer_answer import SdpAnswerPlan, SdpStreamPlan
from focus.sip.dialog import SipDialog
from focus.sip.transaction import SipAddress

logger = logging.getLogger(__name__)

#: Static payload types whose silence the media plane can send (RFC 3551 §6).
SILENCE_CODECS = {0: "PCMU", 8: "PCMA"}


class MediaStream(Protocol):
    """What the focus needs of a media-plane stream (``mrf.rtp.stream.RtpStream``)."""

    rtp_port: int
    packets_in: int
    packets_out: int
    auth_failures: int
    replays: int

    def set_keys(
        self, suite: str, rx_key_salt: bytes, tx_key_salt: bytes, *, rx_mki: bytes | None = None
    ) -> None: ...
    def set_remote(self, host: str, rtp_port: int, rtcp_port: int | None = None) -> None: ...
    def start_silence(self, codec: str = "PCMU") -> None: ...
    def stop_silence(self) -> None: ...


class MediaAllocator(Protocol):
    """What the focus needs of the media plane (``mrf.rtp.plane.MediaPlane``)."""

    host: str

    def allocate(self, label: str) -> Awaitable[Any]: ...
    def release(self, stream: Any) -> None: ...


class CallState(StrEnum):
    """Roster states (interfaces contract)."""

    DIALING = "dialing"
    RINGING = "ringing"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ON_HOLD = "on-hold"
    FAILED = "failed"
    LEFT = "left"


@dataclass(slots=True)
class FocusCall:
    """A participant in a conference, from INVITE to BYE."""

    call_id: str
    conference: ConferenceInfo
    conference_uri: str
    identity: CallerIdentity
    role: str
    peer: SipAddress
    invite_key: str
    joined_by: str = "dial-in"
    state: CallState = CallState.CONNECTING
    dialog: SipDialog | None = None
    plan: SdpAnswerPlan | None = None
    streams: dict[int, Any] = field(default_factory=dict)
    session_id: int = field(default_factory=lambda: int(time.time() * 1000) & 0x7FFFFFFF)
    session_version: int = 0
    cancelled: bool = False
    muted: bool = False
    reason: str | None = None  # why a dial-out failed ("486 Busy Here", "ring timeout")
    reinvite_pending: bool = False
    log: logging.LoggerAdapter[logging.Logger] = field(init=False)

    def __post_init__(self) -> None:
        self.log = logging.LoggerAdapter(logger, {"call_id": self.call_id})

    @property
    def participant(self) -> str:
        return str(self.identity)

    async def apply_plan(self, plan: SdpAnswerPlan, media: MediaAllocator) -> None:
        """Allocate, (re-)key and aim the streams of ``plan``; release dropped ones."""
        for index in [i for i in self.streams if not _accepted(plan, i)]:
            media.release(self.streams.pop(index))
        for stream_plan in plan.accepted:
            stream = self.streams.get(stream_plan.index)
            if stream is None:
                stream = await media.allocate(f"{self.call_id}/{stream_plan.index}")
                self.streams[stream_plan.index] = stream
            _configure(stream, stream_plan)
        self.plan = plan
        self.state = CallState.ON_HOLD if _on_hold(plan) else CallState.CONNECTED

    def release_media(self, media: MediaAllocator) -> None:
        """Log each stream's counters (``media-summary``), then release (wipes keys)."""
        for index, stream in sorted(self.streams.items()):
            stream_plan = _stream_plan(self.plan, index)
            logger.info(
                "media-summary conference=%s participant=%s stream=%d kind=audio key_mode=%s "
                "suite=%s packets_in=%d packets_out=%d auth_failures=%d replays=%d",
                self.conference_uri,
                self.participant,
                index,
                stream_plan.key_mode if stream_plan else "none",
                stream_plan.crypto.suite if stream_plan and stream_plan.crypto else "none",
                stream.packets_in,
                stream.packets_out,
                stream.auth_failures,
                stream.replays,
            )
            media.release(stream)
        self.streams.clear()
        self.state = CallState.LEFT

    def roster_entry(self) -> dict[str, object]:
        """This call as a roster entry (interfaces contract)."""
        media: list[dict[str, object]] = []
        for index, stream in sorted(self.streams.items()):
            stream_plan = _stream_plan(self.plan, index)
            media.append(
                {
                    "type": "audio",
                    "key_mode": stream_plan.key_mode if stream_plan else "none",
                    "packets_in": stream.packets_in,
                    "packets_out": stream.packets_out,
                }
            )
        return {
            "uri": self.participant,
            "role": self.role,
            "state": str(self.state),
            "joined_by": self.joined_by,
            "reason": self.reason,
            "muted": self.muted,
            "call_id": self.call_id,
            "media": media,
        }


def _accepted(plan: SdpAnswerPlan, index: int) -> bool:
    return index < len(plan.streams) and plan.streams[index].accepted


def _stream_plan(plan: SdpAnswerPlan | None, index: int) -> SdpStreamPlan | None:
    if plan is None or index >= len(plan.streams):
        return None
    return plan.streams[index]


def _on_hold(plan: SdpAnswerPlan) -> bool:
    return all(s.on_hold for s in plan.accepted)


def _configure(stream: MediaStream, plan: SdpStreamPlan) -> None:
    """Key the stream (SDES: rx = offerer's key, tx = our fresh key) and aim it."""
    if plan.crypto is not None:
        crypto = plan.crypto
        stream.set_keys(
            crypto.suite, crypto.remote_key_salt, crypto.local_key_salt, rx_mki=crypto.remote_mki
        )
    if plan.remote_host is not None and plan.remote_port:
        rtcp_port = plan.remote_rtcp_port
        stream.set_remote(plan.remote_host, plan.remote_port, rtcp_port)
    sends = plan.direction_answer in (SdpDirection.SENDRECV, SdpDirection.SENDONLY)
    codec = SILENCE_CODECS.get(plan.payload_types[0]) if plan.payload_types else None
    if sends and plan.crypto is not None and codec is not None and not plan.on_hold:
        stream.start_silence(codec)
    else:
        stream.stop_silence()


type CallCallback = Callable[[FocusCall], None]
