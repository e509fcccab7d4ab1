"""The conference audio mixer, sans-I/O: packets and `now` in, one frame per tick out.

Built for large rooms, where a few people talk and everyone else listens:
the work per tick grows with the number of *speakers*; per listener only the
SRTP protection and the send remain (the sink).  Every participant has a
send codec (its rate is the participant's *native rate*), decoders for the
payload types it may send, an adaptive jitter buffer (:mod:`mrf.rtp.jitter`)
and a sink that protects and sends a payload.

Receive: a payload is decoded only when it may matter -- its sender is a
speaker or holds a floor, or the payload may hold speech
(:mod:`mrf.rtp.activity` reads Opus' VAD flags and G.711 levels without
decoding).  A silent listener's packets are kept undecoded in a short ring
(`PREROLL_PACKETS`); when it starts to speak they are decoded first, so the
decoder state is right and the first syllable is in the jitter buffer.

Each tick (20 ms, driven by :mod:`mrf.rtp.conference`):

1. every decoded participant's jitter buffer yields a frame; its level goes
   to the speaker selection (:mod:`mrf.rtp.speakers`: VAD level with
   hysteresis, at most ``max_speakers`` plus floor holders);
2. a new speaker's playout is moved back over the frames that made it one
   (pre-roll, :meth:`RtpJitterBuffer.rewind`) and faded in over one frame; a
   speaker that stops is faded out over its last frame (no clicks);
3. the speakers' frames are summed per rate, and each rate's mix is that sum
   plus the other rates' sums converted once (:class:`RtpResampler`);
4. one *shared* payload per send group (codec, rate, 20 ms) -- the mix,
   through a soft limiter, encoded once -- for every listener of that group,
   and one N-1 payload per speaker (mix minus its own contribution, exact in
   its own rate), each encoded once with the speaker's own encoder;
5. every listener's sink gets its payload: only SRTP and the send are per
   listener.

Encoder state (Opus): a listener that becomes a speaker was decoding the
shared encoder's stream, so its own encoder first becomes a copy of the
shared one (:meth:`OpusCodec.copy_encoder_from`) and the stream goes on
seamlessly.  The other way cannot be copied (the shared encoder serves the
others), so a former speaker keeps its own encoder, encoding the shared mix,
until the mix is quiet (a change of encoder then cannot be heard) or
`MAX_LINGER` has passed.  Stateless codecs (G.711) switch at once; stateful
ones without a state copy (G.722) keep one encoder per listener.

All arrays are allocated when a participant is added.  A participant alone
hears silence (encoded, so its stream keeps running: comfort silence).
Telephone-events (RFC 4733) are reported through `on_event` and never mixed.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mrf.rtp.activity import RtpActivity, payload_activity
from mrf.rtp.codec import RtpCodec, RtpCodecError, Samples, create_codec
from mrf.rtp.dtmf import RtpTelephoneEventReceiver, TelephoneEventReceived
from mrf.rtp.jitter import RtpJitterBuffer
from mrf.rtp.resample import RtpResampler
from mrf.rtp.speakers import RtpSpeakerConfig, RtpSpeakerSelector, frame_level

logger = logging.getLogger(__name__)

type RtpSink = Callable[[bytes, int, int], bool]  # (payload, pt, timestamp increment) -> sent
type OnTelephoneEvent = Callable[[str, TelephoneEventReceived], None]
type OnSpeakers = Callable[[tuple[str, ...], tuple[str, ...]], None]  # (started, stopped)

LIMITER_THRESHOLD = 0.7  # about -3 dBFS: below it the limiter is transparent
MAX_PARTICIPANTS = 5000
PREROLL_PACKETS = 3  # undecoded packets kept per listener (60 ms at 20 ms ptime)
IDLE_PACKETS = 25  # silent hints in a row before a non-speaker is no longer decoded
QUIET_PEAK = 10 ** (-50 / 20)  # a mix this quiet hides a change of encoder
MAX_LINGER = 5.0  # seconds a former speaker keeps its own encoder at most


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
    decoded: int = 0  # payloads decoded (the others were silent listeners' packets)
    decode_errors: int = 0
    unknown_payload_types: int = 0
    frames_sent: int = 0
    limited_frames: int = 0
    _recent: deque[tuple[RtpCodec, int, bytes, float]] = field(init=False)
    _decoding: bool = False  # its decoder follows the stream (speaker or candidate)
    _recent_pt: int = -1  # the fast path of receive(): the last mixable payload type
    _recent_decoder: RtpCodec = field(init=False)
    _recent_name: str = ""
    _silent_hints: int = 0
    _frame: Samples | None = None  # the frame read this tick (decoding participants)
    _contribution: Samples | None = None  # what it added to the mix this tick
    _scaled: Samples = field(init=False)
    _out: Samples = field(init=False)
    _own_encoder: bool = False  # its own encoder carries its stream (else the shared one)
    _linger_since: float | None = None  # a former speaker still on its own encoder
    _send_group: _SendGroup | None = None  # None: a codec whose listeners cannot share

    def __post_init__(self) -> None:
        self.jitter = RtpJitterBuffer(
            self.codec.sample_rate, self.codec.frame_samples, clock_rate=self.codec.clock_rate
        )
        self.events = RtpTelephoneEventReceiver(8000)
        self._recent = deque(maxlen=PREROLL_PACKETS)
        self._recent_decoder = self.codec  # set by receive() with _recent_pt
        self._out = np.zeros(self.codec.frame_samples, dtype=np.float32)
        self._scaled = np.zeros(self.codec.frame_samples, dtype=np.float32)

    @property
    def rate(self) -> int:
        return self.codec.sample_rate


@dataclass(slots=True, eq=False)
class _RateGroup:
    rate: int
    frame_samples: int
    members: int = 0
    total: Samples = field(init=False)
    mixed: Samples = field(init=False)
    limited: Samples = field(init=False)
    limited_now: bool = False
    peak: float = 0.0

    def __post_init__(self) -> None:
        self.total = np.zeros(self.frame_samples, dtype=np.float32)
        self.mixed = np.zeros(self.frame_samples, dtype=np.float32)
        self.limited = np.zeros(self.frame_samples, dtype=np.float32)


@dataclass(slots=True, eq=False)
class _SendGroup:
    """Listeners of one codec at one rate and ptime: one encoder, one payload per tick."""

    encoder: RtpCodec
    rate: _RateGroup
    members: int = 0
    payload: bytes | None = None  # this tick's shared payload, made on first use


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


def _send_key(codec: RtpCodec) -> tuple[str, int, int]:
    return (codec.name, codec.sample_rate, codec.frame_samples)


def _shares(codec: RtpCodec) -> bool:
    """Listeners of this codec may be sent one encoding (stateless, or state copyable)."""
    return bool(getattr(codec, "stateless", False)) or hasattr(codec, "copy_encoder_from")


class RtpMixer:
    """N-1 mixer of one conference, with active-speaker selection."""

    def __init__(
        self,
        *,
        on_event: OnTelephoneEvent | None = None,
        on_speakers: OnSpeakers | None = None,
        max_participants: int = MAX_PARTICIPANTS,
        speakers: RtpSpeakerConfig | None = None,
    ) -> None:
        self.on_event = on_event
        self.on_speakers = on_speakers
        self.max_participants = max_participants
        self.selector = RtpSpeakerSelector(speakers or RtpSpeakerConfig())
        self.floor_holders: frozenset[str] = frozenset()  # always heard (BFCP floor)
        self._participants: dict[str, RtpMixerParticipant] = {}
        self._decoding: dict[str, RtpMixerParticipant] = {}
        self._heard: dict[str, RtpMixerParticipant] = {}  # the speakers being mixed
        self._lingering: dict[str, RtpMixerParticipant] = {}  # former speakers, own encoder
        self._groups: dict[int, _RateGroup] = {}
        self._send_groups: dict[tuple[str, int, int], _SendGroup] = {}
        self._resamplers: dict[tuple[int, int], RtpResampler] = {}
        self._ramps: dict[int, tuple[Samples, Samples]] = {}
        self.ticks = 0
        self.encodes = 0  # payloads encoded (shared and own), for the benchmark

    def __len__(self) -> int:
        return len(self._participants)

    def __contains__(self, key: object) -> bool:
        return key in self._participants

    def get(self, key: str) -> RtpMixerParticipant | None:
        return self._participants.get(key)

    @property
    def participants(self) -> list[RtpMixerParticipant]:
        return list(self._participants.values())

    @property
    def speakers(self) -> frozenset[str]:
        """Keys of the participants whose audio is mixed now."""
        return frozenset(self._heard)

    def add(self, participant: RtpMixerParticipant) -> None:
        """Admit a participant: from the next tick on it hears the others."""
        if participant.key in self._participants:
            raise RtpMixerError(f"participant {participant.key!r} is already mixed")
        if len(self._participants) >= self.max_participants:
            raise RtpMixerError(f"mixer cap of {self.max_participants} participants reached")
        codec = participant.codec
        self._participants[participant.key] = participant
        group = self._groups.get(participant.rate)
        if group is None:
            group = self._groups[participant.rate] = _RateGroup(
                participant.rate, codec.frame_samples
            )
            self._ramps[codec.frame_samples] = _ramp(codec.frame_samples)
            self._rebuild_resamplers()
        group.members += 1
        participant._own_encoder = not _shares(codec)
        if not participant._own_encoder:
            key = _send_key(codec)
            send = self._send_groups.get(key)
            if send is None:
                send = self._send_groups[key] = _SendGroup(
                    create_codec(codec.name, codec.clock_rate), group
                )
            send.members += 1
            participant._send_group = send

    def remove(self, key: str) -> RtpMixerParticipant | None:
        """Drop a participant at once: nothing more is mixed from or sent to it."""
        participant = self._participants.pop(key, None)
        if participant is None:
            return None
        self._decoding.pop(key, None)
        self._heard.pop(key, None)
        self._lingering.pop(key, None)
        self.selector.remove(key)
        group = self._groups[participant.rate]
        group.members -= 1
        if not group.members:
            del self._groups[participant.rate]
            self._rebuild_resamplers()
        send = participant._send_group
        if send is not None:
            send.members -= 1
            if not send.members:
                del self._send_groups[_send_key(participant.codec)]
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
        if (
            participant._recent_pt == payload_type
            and not participant._decoding
            and not participant.muted
            and participant.receiving
            and key not in self._heard
            and key not in self.floor_holders
            and payload_activity(participant._recent_name, payload) is RtpActivity.SILENT
        ):  # the common case of a large room: a silent listener, nothing to decode
            participant._recent.append((participant._recent_decoder, timestamp, payload, now))
            return
        if payload_type == participant.telephone_event_pt:
            for event in participant.events.receive(timestamp, payload):
                if self.on_event is not None:
                    self.on_event(key, event)
            return
        decoder = participant.decoders.get(payload_type)
        if decoder is None or decoder.sample_rate != participant.rate:
            participant.unknown_payload_types += 1
            return
        if participant.muted or not participant.receiving:
            participant._recent_pt = -1
            participant._recent.clear()  # what it said while muted is never heard, not even later
            return  # never mixed: nothing to decode
        participant._recent_pt, participant._recent_decoder = payload_type, decoder
        participant._recent_name = decoder.name
        if key in self._heard or key in self.floor_holders:
            participant._silent_hints = 0
        elif payload_activity(decoder.name, payload) is RtpActivity.SILENT:
            participant._silent_hints += 1
            if not participant._decoding or participant._silent_hints >= IDLE_PACKETS:
                self._stop_decoding(participant)
                participant._recent.append((decoder, timestamp, payload, now))
                return
        else:
            participant._silent_hints = 0
        if not participant._decoding:
            self._start_decoding(participant)
        self._decode(participant, decoder, timestamp, payload, now)

    def _start_decoding(self, participant: RtpMixerParticipant) -> None:
        """The participant may speak: decode its recent packets first (pre-roll)."""
        participant._decoding = True
        self._decoding[participant.key] = participant
        while participant._recent:
            self._decode(participant, *participant._recent.popleft())

    def _stop_decoding(self, participant: RtpMixerParticipant) -> None:
        if participant._decoding:
            participant._decoding = False
            participant._frame = None
            del self._decoding[participant.key]

    def _decode(
        self,
        participant: RtpMixerParticipant,
        decoder: RtpCodec,
        timestamp: int,
        payload: bytes,
        now: float,
    ) -> None:
        try:
            samples = decoder.decode(payload)
        except RtpCodecError:
            participant.decode_errors += 1
            return
        participant.decoded += 1
        participant.jitter.put(timestamp, samples, now)

    # -- tick ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Select the speakers, mix, and send one frame to every listener."""
        self.ticks += 1
        levels = self._measure(now)
        self.selector.update(levels, now, self.floor_holders)
        started, stopped = self._follow_speakers(now)
        self._mix(stopped)
        self._prepare_encoders(now)
        self._send(now)
        for participant in stopped:
            participant._contribution = None
        if (started or stopped) and self.on_speakers is not None:
            self.on_speakers(
                tuple(sorted(p.key for p in started)), tuple(sorted(p.key for p in stopped))
            )

    def _measure(self, now: float) -> dict[str, float]:
        levels: dict[str, float] = {}
        for participant in list(self._decoding.values()):
            if participant.muted or not participant.receiving:
                self._stop_decoding(participant)
                self.selector.remove(participant.key)
                continue
            frame = participant.jitter.read(now)
            participant._frame = frame
            if frame is not None:
                levels[participant.key] = frame_level(float(np.dot(frame, frame)) / frame.size)
        return levels

    def _follow_speakers(
        self, now: float
    ) -> tuple[list[RtpMixerParticipant], list[RtpMixerParticipant]]:
        """Apply the selection: pre-roll and fade-in for new speakers, fade-out for old."""
        wanted = {
            key: p
            for key in self.selector.speakers
            if (p := self._participants.get(key)) is not None and not p.muted and p.receiving
        }
        started = [p for key, p in wanted.items() if key not in self._heard]
        stopped = [p for key, p in self._heard.items() if key not in wanted]
        ramp_up, ramp_down = 0, 1
        for participant in started:
            if not participant._decoding:
                self._start_decoding(participant)  # a floor holder that was silent
            frames = self.selector.config.start_ticks + 1
            if participant.jitter.rewind(frames * participant.codec.frame_samples):
                participant._frame = participant.jitter.read(now)
            self._contribute(participant, self._ramps[participant.codec.frame_samples][ramp_up])
        for participant in wanted.values():
            if participant.key in self._heard:
                self._contribute(participant, None)
        for participant in stopped:
            participant.jitter.release()
            if participant._send_group is not None:
                participant._linger_since = now
                self._lingering[participant.key] = participant
            self._contribute(participant, self._ramps[participant.codec.frame_samples][ramp_down])
        self._heard = wanted
        return started, stopped

    def _contribute(self, participant: RtpMixerParticipant, gain: Samples | None) -> None:
        frame = participant._frame
        if frame is None:
            participant._contribution = None
        elif gain is None:
            participant._contribution = frame
        else:
            np.multiply(frame, gain, out=participant._scaled)
            participant._contribution = participant._scaled

    def _mix(self, stopped: list[RtpMixerParticipant]) -> None:
        for group in self._groups.values():
            group.total.fill(0.0)
        for participant in (*self._heard.values(), *stopped):
            contribution = participant._contribution
            if contribution is not None:
                total = self._groups[participant.rate].total
                np.add(total, contribution, out=total)
        for group in self._groups.values():
            np.copyto(group.mixed, group.total)
            for other in self._groups.values():
                if other is not group:
                    converted = self._resamplers[(other.rate, group.rate)].process(other.total)
                    np.add(group.mixed, converted, out=group.mixed)
            np.copyto(group.limited, group.mixed)
            group.limited_now = soft_limit(group.limited)
            group.peak = float(np.abs(group.limited).max())
        for send in self._send_groups.values():
            send.payload = None

    def _prepare_encoders(self, now: float) -> None:
        """Hand encoders between the shared stream and own streams (see module doc)."""
        for participant in self._heard.values():
            if not participant._own_encoder:
                self._take_own_encoder(participant)
            if self._lingering.pop(participant.key, None) is not None:
                participant._linger_since = None
        for participant in list(self._lingering.values()):
            since = participant._linger_since
            if since is None or participant._contribution is not None:
                continue  # it faded out this tick: its own N-1 frame still goes out
            stateless = bool(getattr(participant.codec, "stateless", False))
            quiet = self._groups[participant.rate].peak < QUIET_PEAK
            if stateless or quiet or now - since >= MAX_LINGER:
                participant._own_encoder = False
                participant._linger_since = None
                del self._lingering[participant.key]

    def _take_own_encoder(self, participant: RtpMixerParticipant) -> None:
        send = participant._send_group
        copy = getattr(participant.codec, "copy_encoder_from", None)
        if send is not None and copy is not None:
            if send.payload is not None:
                raise RtpMixerError("encoder copied after the shared frame was encoded")
            copy(send.encoder)
        participant._own_encoder = True

    def _send(self, now: float) -> None:
        for participant in self._participants.values():
            if not participant.sending:
                continue
            send = participant._send_group
            if participant._own_encoder or send is None:
                payload, limited = self._encode_own(participant)
            else:
                if send.payload is None:
                    send.payload = send.encoder.encode(send.rate.limited)
                    self.encodes += 1
                payload, limited = send.payload, send.rate.limited_now
            if limited:
                participant.limited_frames += 1
            if payload and participant.sink(
                payload, participant.payload_type, participant.codec.timestamp_increment
            ):
                participant.frames_sent += 1

    def _encode_own(self, participant: RtpMixerParticipant) -> tuple[bytes, bool]:
        group = self._groups[participant.rate]
        own = participant._contribution
        if own is None:
            frame, limited = group.limited, group.limited_now
        else:
            frame = participant._out
            np.subtract(group.mixed, own, out=frame)
            limited = soft_limit(frame)
        self.encodes += 1
        return participant.codec.encode(frame), limited

    def skip(self, ticks: int) -> None:
        """The clock skipped `ticks` ticks: advance every jitter buffer over them."""
        for participant in self._decoding.values():
            participant.jitter.skip(ticks * participant.codec.frame_samples)


def _ramp(count: int) -> tuple[Samples, Samples]:
    """Gains of a one-frame cross-fade: (0 -> 1, 1 -> 0), raised cosine."""
    up = (0.5 - 0.5 * np.cos(np.pi * (np.arange(count) + 0.5) / count)).astype(np.float32)
    return up, np.ascontiguousarray(up[::-1])


__all__ = [
    "LIMITER_THRESHOLD",
    "PREROLL_PACKETS",
    "RtpMixer",
    "RtpMixerError",
    "RtpMixerParticipant",
    "RtpSink",
    "soft_limit",
]
