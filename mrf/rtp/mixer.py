"""The conference audio mixer, sans-I/O: packets and `now` in, one frame per tick out.

Every participant has a send codec (its rate is the participant's *native
rate*), decoders for the payload types it may send, an adaptive jitter buffer
(:mod:`mrf.rtp.jitter`) and a sink that protects and sends a payload.  Each
tick (20 ms, driven by :mod:`mrf.rtp.conference`):

1. every participant's jitter buffer yields one frame (or nothing); the
   frames of unmuted participants are added into the *total* of their rate;
2. for each rate that has listeners, the mix is that rate's total plus the
   other rates' totals converted once (:class:`mrf.rtp.resample.RtpResampler`);
3. each listener hears the mix minus its own frame (N-1 mixing: total minus
   own contribution, exact because it happens in the participant's own rate),
   through a soft limiter (no clipping), encoded and handed to its sink.
   Listeners that added nothing this tick all hear the same mix: with a
   stateless codec (G.711, ``codec.stateless``) it is limited and encoded once
   per codec and the payload shared (only the SRTP protection is per listener).

All arrays are allocated when a participant is added; a tick does O(N) NumPy
calls on preallocated buffers and no per-sample Python work.  A participant
alone hears silence (encoded, so its stream keeps running: comfort silence).
Telephone-events (RFC 4733) are reported through `on_event` and never mixed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mrf.rtp.codec import RtpCodec, RtpCodecError, Samples
from mrf.rtp.dtmf import RtpTelephoneEventReceiver, TelephoneEventReceived
from mrf.rtp.jitter import RtpJitterBuffer
from mrf.rtp.resample import RtpResampler

logger = logging.getLogger(__name__)

type RtpSink = Callable[[bytes, int, int], bool]  # (payload, pt, timestamp increment) -> sent
type OnTelephoneEvent = Callable[[str, TelephoneEventReceived], None]

LIMITER_THRESHOLD = 0.7  # about -3 dBFS: below it the limiter is transparent
MAX_PARTICIPANTS = 1000


class RtpMixerError(Exception):
    """Misuse of the mixer (duplicate key, unknown participant, cap reached)."""


@dataclass(slots=True, eq=False)
class RtpMixerParticipant:
    """One participant's mixing state; flags may change at any time (hold, mute)."""

    key: str
    codec: RtpCodec  # send codec; its rate is the participant's native rate
    payload_type: int
    sink: RtpSink
    decoders: dict[int, RtpCodec]
    telephone_event_pt: int | None = None
    muted: bool = False  # its audio is not mixed (it still hears the others)
    receiving: bool = True  # the stream direction lets us receive its audio
    sending: bool = True  # the stream direction lets us send it the mix
    jitter: RtpJitterBuffer = field(init=False)
    events: RtpTelephoneEventReceiver = field(init=False)
    packets: int = 0
    decode_errors: int = 0
    unknown_payload_types: int = 0
    frames_sent: int = 0
    limited_frames: int = 0
    _own: Samples | None = None
    _out: Samples = field(init=False)

    def __post_init__(self) -> None:
        self.jitter = RtpJitterBuffer(
            self.codec.sample_rate, self.codec.frame_samples, clock_rate=self.codec.clock_rate
        )
        self.events = RtpTelephoneEventReceiver(8000)
        self._out = np.zeros(self.codec.frame_samples, dtype=np.float32)

    @property
    def rate(self) -> int:
        return self.codec.sample_rate


@dataclass(slots=True, eq=False)
class _RateGroup:
    rate: int
    frame_samples: int
    members: list[RtpMixerParticipant] = field(default_factory=list)
    total: Samples = field(init=False)
    mixed: Samples = field(init=False)
    active: int = 0

    def __post_init__(self) -> None:
        self.total = np.zeros(self.frame_samples, dtype=np.float32)
        self.mixed = np.zeros(self.frame_samples, dtype=np.float32)


def soft_limit(frame: Samples, threshold: float = LIMITER_THRESHOLD) -> bool:
    """Compress peaks above `threshold` smoothly into (-1, 1), in place.

    y = sign(x) * (T + (1 - T) * tanh((|x| - T) / (1 - T))) for |x| > T: the
    curve and its slope are continuous at T and never reach full scale, so the
    encoder never clips.  Returns True when the frame needed limiting.
    """
    if frame.max() <= threshold and frame.min() >= -threshold:
        return False
    knee = 1.0 - threshold
    magnitude = np.abs(frame)
    over = magnitude > threshold
    compressed = threshold + knee * np.tanh((magnitude[over] - threshold) / knee)
    frame[over] = np.copysign(compressed, frame[over]).astype(np.float32)
    return True


class RtpMixer:
    """N-1 mixer of one conference."""

    def __init__(
        self, *, on_event: OnTelephoneEvent | None = None, max_participants: int = MAX_PARTICIPANTS
    ) -> None:
        self.on_event = on_event
        self.max_participants = max_participants
        self._participants: dict[str, RtpMixerParticipant] = {}
        self._groups: dict[int, _RateGroup] = {}
        self._resamplers: dict[tuple[int, int], RtpResampler] = {}
        self.ticks = 0

    def __len__(self) -> int:
        return len(self._participants)

    def __contains__(self, key: object) -> bool:
        return key in self._participants

    def get(self, key: str) -> RtpMixerParticipant | None:
        return self._participants.get(key)

    @property
    def participants(self) -> list[RtpMixerParticipant]:
        return list(self._participants.values())

    def add(self, participant: RtpMixerParticipant) -> None:
        """Admit a participant: from the next tick on it hears the others."""
        if participant.key in self._participants:
            raise RtpMixerError(f"participant {participant.key!r} is already mixed")
        if len(self._participants) >= self.max_participants:
            raise RtpMixerError(f"mixer cap of {self.max_participants} participants reached")
        self._participants[participant.key] = participant
        group = self._groups.get(participant.rate)
        if group is None:
            group = self._groups[participant.rate] = _RateGroup(
                participant.rate, participant.codec.frame_samples
            )
            self._rebuild_resamplers()
        group.members.append(participant)

    def remove(self, key: str) -> RtpMixerParticipant | None:
        """Drop a participant at once: nothing more is mixed from or sent to it."""
        participant = self._participants.pop(key, None)
        if participant is None:
            return None
        group = self._groups[participant.rate]
        group.members.remove(participant)
        if not group.members:
            del self._groups[participant.rate]
            self._rebuild_resamplers()
        return participant

    def _rebuild_resamplers(self) -> None:
        rates = sorted(self._groups)
        wanted = {(a, b) for a in rates for b in rates if a != b}
        for pair in list(self._resamplers):
            if pair not in wanted:
                del self._resamplers[pair]
        for a, b in wanted - set(self._resamplers):
            self._resamplers[(a, b)] = RtpResampler(a, b, self._groups[a].frame_samples)

    # -- receive ------------------------------------------------------------------------

    def receive(
        self, key: str, payload_type: int, timestamp: int, payload: bytes, now: float
    ) -> None:
        """One authenticated RTP payload of participant `key`, arriving at `now`."""
        participant = self._participants.get(key)
        if participant is None:
            return
        participant.packets += 1
        if payload_type == participant.telephone_event_pt:
            for event in participant.events.receive(timestamp, payload):
                if self.on_event is not None:
                    self.on_event(key, event)
            return
        decoder = participant.decoders.get(payload_type)
        if decoder is None or decoder.sample_rate != participant.rate:
            participant.unknown_payload_types += 1
            return
        try:
            samples = decoder.decode(payload)
        except RtpCodecError:
            participant.decode_errors += 1
            return
        participant.jitter.put(timestamp, samples, now)

    # -- tick ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Mix and send one frame to every listener."""
        self.ticks += 1
        for group in self._groups.values():
            self._collect(group, now)
        for group in self._groups.values():
            self._mix_for(group)
        for group in self._groups.values():
            shared: dict[str, tuple[bytes, bool]] = {}  # codec name -> (payload, limited)
            for participant in group.members:
                self._send(participant, group.mixed, shared)

    def _collect(self, group: _RateGroup, now: float) -> None:
        group.total.fill(0.0)
        group.active = 0
        for participant in group.members:
            frame = participant.jitter.read(now)
            if frame is None or participant.muted or not participant.receiving:
                participant._own = None
                continue
            np.add(group.total, frame, out=group.total)
            participant._own = frame
            group.active += 1

    def _mix_for(self, group: _RateGroup) -> None:
        np.copyto(group.mixed, group.total)
        for other in self._groups.values():
            if other is group:
                continue
            converted = self._resamplers[(other.rate, group.rate)].process(other.total)
            np.add(group.mixed, converted, out=group.mixed)

    def _send(
        self,
        participant: RtpMixerParticipant,
        mixed: Samples,
        shared: dict[str, tuple[bytes, bool]],
    ) -> None:
        if not participant.sending:
            return
        codec = participant.codec
        share = participant._own is None and getattr(codec, "stateless", False)
        cached = shared.get(codec.name) if share else None
        if cached is None:
            out = participant._out
            if participant._own is not None:
                np.subtract(mixed, participant._own, out=out)
            else:
                np.copyto(out, mixed)
            limited = soft_limit(out)
            cached = (codec.encode(out), limited)
            if share:
                shared[codec.name] = cached
        payload, limited = cached
        if limited:
            participant.limited_frames += 1
        if payload and participant.sink(
            payload, participant.payload_type, participant.codec.timestamp_increment
        ):
            participant.frames_sent += 1

    def skip(self, ticks: int) -> None:
        """The clock skipped `ticks` ticks: advance every jitter buffer over them."""
        for participant in self._participants.values():
            participant.jitter.skip(ticks * participant.codec.frame_samples)


__all__ = [
    "LIMITER_THRESHOLD",
    "RtpMixer",
    "RtpMixerError",
    "RtpMixerParticipant",
    "RtpSink",
    "soft_limit",
]
