"""The mixer on the event loop, wired to the focus.

`RtpConferenceMixer` drives one :class:`~mrf.rtp.mixer.RtpMixer` with one
``loop.call_at`` timer on absolute 20 ms deadlines of the loop's monotonic
clock.  When the loop was late by more than a tick, the missed ticks are not
run in a burst: they are counted (`dropped_ticks`), the jitter buffers and
every stream's RTP timestamp skip over them (RFC 3550 §5.1), and the
schedule goes on from the next deadline.  Each tick's compute time is kept
in a ring for the 99th percentile.

`RtpMixerPool` is the focus listener (:meth:`focus.service.FocusService.subscribe`):

* ``ParticipantJoined`` → the call's accepted audio streams join its
  conference's mixer (created on first use); the stream's comfort-silence
  generator stops, the mixer sends from now on;
* ``ParticipantUpdated`` → hold (stream direction) and mute are re-read, the
  codec follows a re-negotiation;
* ``ParticipantLeft`` → the participant leaves the mixer at once; an empty
  conference's mixer and timer are closed;
* a telephone-event (RFC 4733) a participant sent → ``focus.note_dtmf``, so its
  roster entry shows the last digit;
* the mixer's active speakers changed → ``focus.note_talking`` with the call's
  streams that are heard now (roster ``talking``, the conference-info talker
  element);
* the BFCP floors changed (:meth:`RtpMixerPool.watch_floor`, fed by
  ``mrf.floor.FloorControl.on_floor_change``) → every audio stream of a call
  holding a granted floor is mixed whatever its level, outside the
  ``max_speakers`` slots (RFC 8855 §3: the floor holder has the floor).

Isolation (TS 33.328 G.1): the mixer hooks a stream only after the focus
admitted and answered it, and unhooks it before anything else happens after
it left, so nobody gets media before joining or after leaving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from focus.events import FocusEvent, ParticipantJoined, ParticipantLeft, ParticipantUpdated
from focus.sdp.attributes import SdpDirection
from focus.sdp.offer_answer import SdpAnswerPlan, SdpStreamPlan
from mrf.rtp.codec import FRAME_DURATION, RtpCodec, RtpCodecError, create_codec
from mrf.rtp.dtmf import TelephoneEventReceived
from mrf.rtp.mixer import RtpMixer, RtpMixerParticipant
from mrf.rtp.packet import RtpPacket
from mrf.rtp.speakers import RtpSpeakerConfig
from mrf.rtp.stream import RtpStream

logger = logging.getLogger(__name__)

TICK_HISTORY = 3000  # ticks kept for percentiles (one minute)
MAX_EVENTS = 64  # telephone-events kept per conference


class RtpConferenceMixer:
    """One conference's mixer and its tick timer."""

    def __init__(
        self,
        name: str,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        on_event: Callable[[str, str, TelephoneEventReceived], None] | None = None,
        on_speakers: Callable[[str, tuple[str, ...], tuple[str, ...]], None] | None = None,
        speakers: RtpSpeakerConfig | None = None,
    ) -> None:
        self.name = name
        self._loop = loop or asyncio.get_running_loop()
        self.mixer = RtpMixer(on_event=self._event, on_speakers=self._speakers, speakers=speakers)
        self._on_event = on_event
        self._on_speakers = on_speakers
        self._streams: dict[str, RtpStream] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self.dropped_ticks = 0
        self.tick_times = np.zeros(TICK_HISTORY, dtype=np.float64)
        self._tick_count = 0
        self.events: list[dict[str, Any]] = []

    # -- participants --------------------------------------------------------------

    def attach(self, key: str, stream: RtpStream, participant: RtpMixerParticipant) -> None:
        """Start mixing for `stream`; its comfort silence stops (the mixer sends now)."""
        self.detach(key)
        self.mixer.add(participant)
        self._streams[key] = stream
        stream.stop_silence()
        stream.set_clock_rate(participant.codec.clock_rate)
        stream.on_rtp = self._receiver(key)
        if self._timer is None:
            self._deadline = self._loop.time() + FRAME_DURATION
            self._timer = self._loop.call_at(self._deadline, self._tick)

    def detach(self, key: str) -> None:
        """Stop mixing for `key` at once (no packet is mixed from or sent to it)."""
        stream = self._streams.pop(key, None)
        if stream is not None and stream.on_rtp is not None:
            stream.on_rtp = None
        self.mixer.remove(key)
        if not self._streams:
            self.stop()

    def _receiver(self, key: str) -> Callable[[RtpStream, RtpPacket], None]:
        mixer, clock = self.mixer, self._loop.time

        def on_rtp(stream: RtpStream, packet: RtpPacket) -> None:
            mixer.receive(key, packet.payload_type, packet.timestamp, packet.payload, clock())

        return on_rtp

    def _event(self, key: str, event: TelephoneEventReceived) -> None:
        record = {"participant": key, "event": event.name, "duration": event.duration}
        self.events = [*self.events[-(MAX_EVENTS - 1) :], record]
        logger.info(
            "telephone-event conference=%s participant=%s event=%s duration_ms=%d ended=%s",
            self.name, key, event.name, round(event.duration * 1000), event.ended,
        )  # fmt: skip
        if self._on_event is not None:
            self._on_event(self.name, key, event)

    def _speakers(self, started: tuple[str, ...], stopped: tuple[str, ...]) -> None:
        logger.debug("speakers conference=%s started=%s stopped=%s", self.name, started, stopped)
        if self._on_speakers is not None:
            self._on_speakers(self.name, started, stopped)

    # -- clock ------------------------------------------------------------------------

    def _tick(self) -> None:
        started = time.perf_counter()
        now = self._loop.time()
        late = int((now - self._deadline) / FRAME_DURATION)
        if late >= 1:  # skip-ahead: do not burst the ticks the loop missed
            self.dropped_ticks += late
            self._deadline += late * FRAME_DURATION
            self.mixer.skip(late)
            for key, stream in self._streams.items():
                participant = self.mixer.get(key)
                if participant is not None:
                    stream.skip_samples(late * participant.codec.timestamp_increment)
        self.mixer.tick(now)
        self._deadline += FRAME_DURATION
        self._timer = self._loop.call_at(self._deadline, self._tick)
        self.tick_times[self._tick_count % TICK_HISTORY] = time.perf_counter() - started
        self._tick_count += 1

    def tick_percentile(self, q: float) -> float:
        """Percentile `q` (0-100) of the recent ticks' compute time, seconds."""
        count = min(self._tick_count, TICK_HISTORY)
        return float(np.percentile(self.tick_times[:count], q)) if count else 0.0

    @property
    def ticks(self) -> int:
        return self._tick_count

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        for key in list(self._streams):
            self.detach(key)
        self.stop()


class _Call(Protocol):
    """What the pool reads of a :class:`focus.call.FocusCall`."""

    call_id: str
    muted: bool
    plan: SdpAnswerPlan | None
    streams: dict[int, Any]  # RtpStream per m-line (FocusCall keeps them untyped)


class _Focus(Protocol):
    def find_call(self, call_id: str) -> _Call | None: ...
    def subscribe(self, listener: Callable[[FocusEvent], None]) -> Callable[[], None]: ...
    def note_dtmf(self, call_id: str, event: str, duration_ms: int) -> bool: ...
    def note_talking(self, call_id: str, streams: frozenset[int]) -> bool: ...


class _Floor(Protocol):  # mrf.floor.FloorControl
    def on_floor_change(self, listener: Callable[[], None]) -> Callable[[], None]: ...
    def floor_holders(self, conference: str) -> frozenset[str]: ...


_SENDS = (SdpDirection.SENDRECV, SdpDirection.SENDONLY)
_RECEIVES = (SdpDirection.SENDRECV, SdpDirection.RECVONLY)


def participant_for(
    key: str, stream: RtpStream, plan: SdpStreamPlan, muted: bool
) -> RtpMixerParticipant:
    """Mixer state for one accepted stream plan (`SdpStreamPlan`); RtpCodecError if none fits."""
    decoders: dict[int, RtpCodec] = {}
    send: tuple[int, RtpCodec] | None = None
    for rtpmap in plan.rtpmaps:
        if rtpmap.payload_type == plan.telephone_event_pt:
            continue
        try:
            codec = create_codec(rtpmap.encoding, rtpmap.clock_rate)
        except RtpCodecError:
            continue
        decoders[rtpmap.payload_type] = codec
        if send is None:
            send = (rtpmap.payload_type, create_codec(rtpmap.encoding, rtpmap.clock_rate))
    if send is None:
        raise RtpCodecError(f"no mixable codec in {[str(m) for m in plan.rtpmaps]}")
    participant = RtpMixerParticipant(
        key, send[1], send[0], stream.send_rtp, decoders,
        telephone_event_pt=plan.telephone_event_pt, muted=muted,
    )  # fmt: skip
    _apply_direction(participant, plan)
    return participant


def _apply_direction(participant: RtpMixerParticipant, plan: SdpStreamPlan) -> None:
    participant.sending = plan.direction_answer in _SENDS and not plan.on_hold
    participant.receiving = plan.direction_answer in _RECEIVES


class RtpMixerPool:
    """Per-conference mixers, driven by the focus's participant events."""

    def __init__(
        self,
        focus: _Focus,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        speakers: RtpSpeakerConfig | None = None,
    ) -> None:
        self.focus = focus
        self._loop = loop or asyncio.get_running_loop()
        self.speakers = speakers or RtpSpeakerConfig()
        self._talking: dict[str, frozenset[int]] = {}  # call-id -> its streams heard now
        self.conferences: dict[str, RtpConferenceMixer] = {}
        self._members: dict[str, tuple[str, list[str]]] = {}  # call-id -> (conference, keys)
        self._floor: _Floor | None = None
        self._unsubscribe = focus.subscribe(self.handle)
        self._unsubscribe_floor: Callable[[], None] | None = None

    def watch_floor(self, control: _Floor) -> None:
        """Keep the floor holders of ``control`` (``mrf.floor.FloorControl``) always mixed."""
        self._floor = control
        self._unsubscribe_floor = control.on_floor_change(self._floors_changed)
        self._floors_changed()

    def _floors_changed(self) -> None:
        for name in self.conferences:
            self._follow_floor(name)

    def _follow_floor(self, conference: str) -> None:
        """Set the mixer's floor holders: the audio streams of the calls granted a floor."""
        mixer = self.conferences.get(conference)
        if mixer is None or self._floor is None:
            return
        calls = self._floor.floor_holders(conference)
        keys = frozenset(
            key for call_id in calls for key in self._members.get(call_id, ("", []))[1]
        )
        if keys != mixer.mixer.floor_holders:
            logger.info("mixer conference=%s floor holders=%d", conference, len(keys))
            mixer.mixer.floor_holders = keys

    def handle(self, event: FocusEvent) -> None:
        if isinstance(event, ParticipantJoined):
            self._join(event.conference, event.call_id, event.participant)
        elif isinstance(event, ParticipantUpdated):
            self._update(event.conference, event.call_id, event.participant)
        elif isinstance(event, ParticipantLeft):
            self._leave(event.call_id)

    def _join(self, conference: str, call_id: str, participant: str) -> None:
        call = self.focus.find_call(call_id)
        if call is None or call.plan is None:
            return
        mixer = self.conferences.get(conference)
        if mixer is None:
            mixer = self.conferences[conference] = RtpConferenceMixer(
                conference, self._loop, on_event=self._telephone_event,
                on_speakers=self._speakers_changed, speakers=self.speakers,
            )  # fmt: skip
        keys: list[str] = []
        for index, stream in sorted(call.streams.items()):
            key = f"{call_id}/{index}"
            plans = call.plan.streams
            if index >= len(plans) or plans[index].kind != "audio":
                continue
            try:
                state = participant_for(key, stream, plans[index], call.muted)
            except RtpCodecError as exc:
                logger.warning(
                    "[%s] stream %d of %s not mixed: %s", call_id, index, participant, exc
                )
                continue
            mixer.attach(key, stream, state)
            keys.append(key)
        self._members[call_id] = (conference, keys)
        self._follow_floor(conference)  # a re-joined call may already hold the floor
        logger.info(
            "mixer conference=%s participant=%s streams=%d", conference, participant, len(keys)
        )

    def _telephone_event(self, conference: str, key: str, event: TelephoneEventReceived) -> None:
        """Report a participant's RFC 4733 event to the focus (its roster entry shows it)."""
        call_id = key.rsplit("/", 1)[0]
        self.focus.note_dtmf(call_id, event.name, round(event.duration * 1000))

    def _speakers_changed(
        self, conference: str, started: tuple[str, ...], stopped: tuple[str, ...]
    ) -> None:
        """Tell the focus which streams of each affected call are heard now."""
        calls: set[str] = set()
        for key in (*started, *stopped):
            call_id, index = key.rsplit("/", 1)
            streams = self._talking.get(call_id, frozenset())
            streams = streams | {int(index)} if key in started else streams - {int(index)}
            self._talking[call_id] = streams
            calls.add(call_id)
        for call_id in calls:
            streams = self._talking[call_id]
            if not streams:
                del self._talking[call_id]
            self.focus.note_talking(call_id, streams)

    def _update(self, conference: str, call_id: str, participant: str) -> None:
        member = self._members.get(call_id)
        call = self.focus.find_call(call_id)
        if member is None or call is None or call.plan is None:
            return
        mixer = self.conferences[member[0]]
        for key in member[1]:
            index = int(key.rsplit("/", 1)[1])
            stream = call.streams.get(index)
            state = mixer.mixer.get(key)
            if stream is None or state is None or index >= len(call.plan.streams):
                mixer.detach(key)
                continue
            plan = call.plan.streams[index]
            fresh = participant_for(key, stream, plan, call.muted)
            if (fresh.codec.name, fresh.payload_type) != (state.codec.name, state.payload_type):
                mixer.attach(key, stream, fresh)  # re-negotiated codec: new mixer state
                continue
            state.muted = call.muted
            _apply_direction(state, plan)
            stream.stop_silence()  # a re-INVITE restarts it in focus.call; the mixer sends

    def _leave(self, call_id: str) -> None:
        self._talking.pop(call_id, None)
        member = self._members.pop(call_id, None)
        if member is None:
            return
        mixer = self.conferences.get(member[0])
        if mixer is None:
            return
        for key in member[1]:
            mixer.detach(key)
        mixer.mixer.floor_holders -= set(member[1])
        if not len(mixer.mixer):
            mixer.close()
            del self.conferences[member[0]]

    def close(self) -> None:
        self._unsubscribe()
        if self._unsubscribe_floor is not None:
            self._unsubscribe_floor()
            self._unsubscribe_floor = None
        for mixer in self.conferences.values():
            mixer.close()
        self.conferences.clear()
        self._members.clear()


__all__ = ["RtpConferenceMixer", "RtpMixerPool", "participant_for"]
