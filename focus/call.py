"""One participant's call at the focus: its dialog, its SDP plan and its media streams.

Keys are per participant and per stream (TS 33.328 G.1): every accepted audio
m-line gets its own :class:`~mrf.rtp.stream.RtpStream` keyed with the offerer's
SDES key (inbound) and a fresh key of ours (outbound).  Nothing here is shared
between two calls.  Each key is one :class:`~focus.sdp.secret.SecretBytes` that
the plan, the MIKEY key set and the stream's SRTP contexts share: on re-key the
stream wipes the old contexts before installing the new ones and the call
wipes the old plan's keys that the new plan does not keep; on hang-up the
streams are released and the plan's and MIKEY keys are wiped.
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
from focus.sdp.bfcp import SdpBfcpLocal, SdpBfcpPolicy
from focus.sdp.msrp import SdpMsrpLocal, SdpMsrpPolicy
from focus.sdp.offer_answer import SdpAnswerPlan, SdpStreamPlan
from focus.sdp.secret import SecretBytes
from focus.sip.dialog import SipDialog
from focus.sip.transaction import SipAddress

logger = logging.getLogger(__name__)

#: Static payload types whose silence the media plane can send (RFC 3551 §6).
SILENCE_CODECS = {0: "PCMU", 8: "PCMA"}


class MediaStream(Protocol):
    """What the focus needs of a media-plane stream (``mrf.rtp.stream.RtpStream``)."""

    rtp_port: int
    ssrc: int  # our sending SSRC (announced in a MIKEY TRANSFER_RESP when keyed so)
    packets_in: int
    packets_out: int
    auth_failures: int
    replays: int
    packets_lost: int  # RTCP reception statistics (RFC 3550 §6.4.1)
    jitter_ms: float

    def set_keys(
        self,
        suite: str,
        rx_key_salt: SecretBytes,
        tx_key_salt: SecretBytes,
        *,
        rx_mki: bytes | None = None,
    ) -> None: ...
    def set_remote(self, host: str, rtp_port: int, rtcp_port: int | None = None) -> None: ...
    def start_silence(self, codec: str = "PCMU") -> None: ...
    def stop_silence(self) -> None: ...


class MediaAllocator(Protocol):
    """What the focus needs of the media plane (``mrf.rtp.plane.MediaPlane``)."""

    host: str

    def allocate(self, label: str) -> Awaitable[Any]: ...
    def release(self, stream: Any) -> None: ...


class ChatService(Protocol):
    """The MSRP switch (``mrf.chat.ChatRelay``): one chat session per accepted m=message."""

    policy: SdpMsrpPolicy

    def open(self, call: FocusCall, plan: SdpStreamPlan) -> SdpMsrpLocal: ...
    def close(self, call: FocusCall) -> None: ...


class FloorService(Protocol):
    """Floor control (``mrf.floor.FloorControl``): one BFCP user per accepted BFCP line."""

    policy: SdpBfcpPolicy

    def open(self, call: FocusCall, plan: SdpStreamPlan) -> SdpBfcpLocal: ...
    def close(self, call: FocusCall) -> None: ...


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
    chat: dict[int, tuple[SdpMsrpLocal, SdpMsrpPolicy]] = field(default_factory=dict)
    floor: dict[int, SdpBfcpLocal] = field(default_factory=dict)  # BFCP (FloorService.open)
    session_id: int = field(default_factory=lambda: int(time.time() * 1000) & 0x7FFFFFFF)
    session_version: int = 0
    cancelled: bool = False
    muted: bool = False
    acked: bool = True  # dial-in: False until the ACK of our 2xx arrives (no media before)
    reason: str | None = None  # why a dial-out failed ("486 Busy Here", "ring timeout")
    reinvite_pending: bool = False
    mikey: Any = None  # SdpMikeyKeys of a MIKEY-TICKET call (focus.keying)
    mikey_dialout: Any = None  # MikeyDialOutKeys of a MIKEY-TICKET dial-out (focus.keying)
    last_dtmf: dict[str, object] | None = None  # latest RFC 4733 event (note_dtmf)
    talking_streams: frozenset[int] = frozenset()  # audio streams mixed as active speakers
    on_media_failed: Callable[[str], None] | None = None  # DTLS handshake failed (service)
    log: logging.LoggerAdapter[logging.Logger] = field(init=False)

    def __post_init__(self) -> None:
        self.log = logging.LoggerAdapter(logger, {"call_id": self.call_id})

    @property
    def participant(self) -> str:
        return str(self.identity)

    def note_dtmf(self, event: str, duration_ms: int) -> None:
        """Record the participant's latest telephone-event (RFC 4733 §3.2) for the roster."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.last_dtmf = {"event": event[:8], "duration_ms": duration_ms, "at": when}

    async def apply_plan(self, plan: SdpAnswerPlan, media: MediaAllocator) -> None:
        """Allocate, (re-)key and aim the streams of ``plan``; release dropped ones."""
        for index in [i for i in self.streams if not _accepted(plan, i)]:
            media.release(self.streams.pop(index))
        for stream_plan in plan.accepted:
            if stream_plan.msrp is not None or stream_plan.bfcp is not None:
                continue  # chat: ChatService.open, floor control: FloorService.open
            stream = self.streams.get(stream_plan.index)
            if stream is None:
                stream = await media.allocate(f"{self.call_id}/{stream_plan.index}")
                self.streams[stream_plan.index] = stream
            _configure(stream, stream_plan, send=self.acked)
            _configure_transport(media, stream, stream_plan, self.on_media_failed)
        if self.plan is not None and self.plan is not plan:
            self.plan.wipe(keep=plan)  # the keys the new plan replaced
        self.plan = plan
        self.state = CallState.ON_HOLD if _on_hold(plan) else CallState.CONNECTED

    def start_sending(self) -> None:
        """The ACK came: start the media held back since the answer (comfort silence;
        the mixer attaches on the ParticipantJoined event that follows)."""
        self.acked = True
        for index, stream in self.streams.items():
            stream_plan = _stream_plan(self.plan, index)
            if stream_plan is not None and stream_plan.crypto is not None:
                _configure(stream, stream_plan)

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
                stream_plan.crypto.suite if stream_plan and stream_plan.crypto else _suite(stream),
                stream.packets_in,
                stream.packets_out,
                stream.auth_failures,
                stream.replays,
            )
            media.release(stream)
        self.streams.clear()
        self.wipe_keys()
        self.state = CallState.LEFT

    def wipe_keys(self) -> None:
        """Zero the keys the call holds: its plan's and its MIKEY-TICKET ones."""
        if self.plan is not None:
            self.plan.wipe()
        if self.mikey is not None:
            self.mikey.wipe()

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
                    "packets_lost": stream.packets_lost,
                    "jitter_ms": stream.jitter_ms,
                }
            )
        for index, (local, _) in sorted(self.chat.items()):
            chat_plan = _stream_plan(self.plan, index)
            mode = chat_plan.key_mode if chat_plan else "fingerprint" if local.secure else "none"
            media.append({"type": "msrp", "key_mode": mode})
        for index, floor in sorted(self.floor.items()):
            floor_plan = _stream_plan(self.plan, index)
            mode = floor_plan.key_mode if floor_plan else "fingerprint" if floor.secure else "none"
            media.append({"type": "bfcp", "key_mode": mode})
        return {
            "uri": self.participant,
            "role": self.role,
            "state": str(self.state),
            "joined_by": self.joined_by,
            "reason": self.reason,
            "muted": self.muted,
            "call_id": self.call_id,
            "last_dtmf": self.last_dtmf,
            "talking": bool(self.talking_streams),
            "media": media,
        }


def _accepted(plan: SdpAnswerPlan, index: int) -> bool:
    if index >= len(plan.streams):
        return False
    stream = plan.streams[index]
    return stream.accepted and stream.msrp is None and stream.bfcp is None


def _stream_plan(plan: SdpAnswerPlan | None, index: int) -> SdpStreamPlan | None:
    if plan is None or index >= len(plan.streams):
        return None
    return plan.streams[index]


def _on_hold(plan: SdpAnswerPlan) -> bool:
    return all(s.on_hold for s in plan.accepted)


def _configure(stream: MediaStream, plan: SdpStreamPlan, *, send: bool = True) -> None:
    """Key the stream (SDES: rx = offerer's key, tx = our fresh key) and aim it.

    ``send`` False keeps it silent: a dial-in participant gets no media before
    its ACK shows it has our answer (and so our key), else its first packets
    would fail to decrypt."""
    if plan.local_ssrc is not None:  # announced in our MIKEY TRANSFER_RESP
        stream.ssrc = plan.local_ssrc
    if plan.crypto is not None:
        crypto = plan.crypto
        stream.set_keys(
            crypto.suite, crypto.remote_key_salt, crypto.local_key_salt, rx_mki=crypto.remote_mki
        )
    ice = plan.ice is not None and not plan.ice.mismatch  # ICE picks the remote (mrf.rtp.ice)
    if plan.remote_host is not None and plan.remote_port and not ice:
        rtcp_port = plan.remote_rtcp_port
        stream.set_remote(plan.remote_host, plan.remote_port, rtcp_port)
    sends = plan.direction_answer in (SdpDirection.SENDRECV, SdpDirection.SENDONLY)
    codec = SILENCE_CODECS.get(plan.payload_types[0]) if plan.payload_types else None
    if send and sends and plan.crypto is not None and codec is not None and not plan.on_hold:
        stream.start_silence(codec)
    else:
        stream.stop_silence()


def _configure_transport(
    media: MediaAllocator,
    stream: MediaStream,
    plan: SdpStreamPlan,
    on_failed: Callable[[str], None] | None = None,
) -> None:
    """Key sources on the media path: ICE and DTLS-SRTP (``MediaPlane.configure_transport``);
    ``on_failed(reason)`` when a DTLS handshake fails."""
    configure = getattr(media, "configure_transport", None)
    if configure is not None and (plan.ice is not None or plan.dtls is not None or _keyed(stream)):
        configure(stream, plan, on_failed=on_failed)


def _suite(stream: MediaStream) -> str:
    """The SRTP suite a media-path key source (DTLS-SRTP) installed, else "none"."""
    suite = getattr(stream, "suite", None)
    return str(getattr(suite, "name", "none"))


def _keyed(stream: MediaStream) -> bool:
    """The stream runs ICE or DTLS from an earlier offer (a re-offer may drop them)."""
    return getattr(stream, "ice", None) is not None or getattr(stream, "keying", None) is not None


type CallCallback = Callable[[FocusCall], None]
