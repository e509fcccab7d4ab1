"""The N-1 mixer core: who hears whom, limiter, mute, hold, rates, telephone-events."""

from __future__ import annotations

import numpy as np
import pytest

from mrf.rtp.codec import G711Codec, create_codec
from mrf.rtp.dtmf import RtpTelephoneEvent, TelephoneEventReceived
from mrf.rtp.mixer import RtpMixer, RtpMixerError, RtpMixerParticipant, soft_limit
from mrf.rtp.speakers import RtpSpeakerConfig


class Sink:
    def __init__(self, codec_name: str) -> None:
        self.decoder = create_codec(*_RTPMAP[codec_name])
        self.frames: list[np.ndarray] = []
        self.increments: list[int] = []

    def __call__(self, payload: bytes, pt: int, increment: int) -> bool:
        self.frames.append(self.decoder.decode(payload))
        self.increments.append(increment)
        return True

    def audio(self, skip: int = 5) -> np.ndarray:
        return np.concatenate(self.frames[skip:])


_RTPMAP = {
    "PCMU": ("PCMU", 8000),
    "PCMA": ("PCMA", 8000),
    "G722": ("G722", 8000),
    "opus": ("opus", 48000),
}
_PT = {"PCMU": 0, "PCMA": 8, "G722": 9, "opus": 111}


def tone_level(audio: np.ndarray, rate: int, frequency: float) -> float:
    """dB of the spectrum around `frequency` (Hann window)."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / rate)
    band = (freqs > frequency - 15) & (freqs < frequency + 15)
    return float(20 * np.log10(spectrum[band].max() + 1e-9))


class Source:
    """A participant's sender: a sine encoded with its codec, timestamped."""

    def __init__(self, codec_name: str, frequency: float) -> None:
        self.codec = create_codec(*_RTPMAP[codec_name])
        self.frequency = frequency
        self.n = 0
        self.timestamp = 1000

    def packet(self) -> tuple[int, bytes]:
        count, rate = self.codec.frame_samples, self.codec.sample_rate
        t = (self.n + np.arange(count)) / rate
        self.n += count
        payload = self.codec.encode(
            (0.3 * np.sin(2 * np.pi * self.frequency * t)).astype(np.float32)
        )
        timestamp = self.timestamp
        self.timestamp += self.codec.timestamp_increment
        return timestamp, payload


def make(mixer: RtpMixer, key: str, codec_name: str) -> tuple[RtpMixerParticipant, Sink]:
    sink = Sink(codec_name)
    codec = create_codec(*_RTPMAP[codec_name])
    decoders = {_PT[codec_name]: create_codec(*_RTPMAP[codec_name])}
    participant = RtpMixerParticipant(
        key, codec, _PT[codec_name], sink, decoders, telephone_event_pt=101
    )
    mixer.add(participant)
    return participant, sink


def run(mixer: RtpMixer, sources: dict[str, Source], ticks: int, start: float = 0.0) -> float:
    now = start
    for _ in range(ticks):
        for key, source in sources.items():
            timestamp, payload = source.packet()
            mixer.receive(key, _PT_OF[key], timestamp, payload, now)
        mixer.tick(now)
        now += 0.020
    return now


_PT_OF: dict[str, int] = {}


def conference(
    codecs: dict[str, str], freqs: dict[str, float], max_speakers: int = 3
) -> tuple[RtpMixer, dict[str, Sink], dict[str, Source]]:
    mixer = RtpMixer(speakers=RtpSpeakerConfig(max_speakers=max_speakers))
    sinks, sources = {}, {}
    for key, codec_name in codecs.items():
        _PT_OF[key] = _PT[codec_name]
        _, sinks[key] = make(mixer, key, codec_name)
        sources[key] = Source(codec_name, freqs[key])
    return mixer, sinks, sources


FREQS = {"a": 440.0, "b": 660.0, "c": 1000.0}


def test_everyone_hears_everyone_but_themselves() -> None:
    mixer, sinks, sources = conference({k: "PCMU" for k in FREQS}, FREQS)
    run(mixer, sources, 60)
    for key, sink in sinks.items():
        audio = sink.audio()
        own = tone_level(audio, 8000, FREQS[key])
        for other in FREQS.keys() - {key}:
            assert tone_level(audio, 8000, FREQS[other]) > own + 40, (key, other)


@pytest.mark.parametrize("codecs", [("PCMU", "PCMA", "G722"), ("opus", "PCMU", "G722")])
def test_mixed_rates_convert_between_participants(codecs: tuple[str, str, str]) -> None:
    mixer, sinks, sources = conference(dict(zip(FREQS, codecs, strict=True)), FREQS)
    run(mixer, sources, 60)
    for key, codec_name in zip(FREQS, codecs, strict=True):
        rate = create_codec(*_RTPMAP[codec_name]).sample_rate
        audio = sinks[key].audio(skip=10)
        own = tone_level(audio, rate, FREQS[key])
        for other in FREQS.keys() - {key}:
            assert tone_level(audio, rate, FREQS[other]) > own + 20, (key, other, codec_name)


def test_alone_hears_comfort_silence_every_tick() -> None:
    mixer, sinks, sources = conference({"a": "PCMU"}, FREQS)
    run(mixer, sources, 20)
    assert len(sinks["a"].frames) == 20 and set(sinks["a"].increments) == {160}
    assert np.abs(sinks["a"].audio(skip=0)).max() < 1e-3


def test_muted_participant_is_not_heard_but_hears() -> None:
    mixer, sinks, sources = conference({k: "PCMU" for k in FREQS}, FREQS)
    mixer.get("a").muted = True
    run(mixer, sources, 60)
    for key in ("b", "c"):
        audio = sinks[key].audio()
        assert (
            tone_level(audio, 8000, 440)
            < tone_level(audio, 8000, FREQS["b" if key == "c" else "c"]) - 40
        )
    audio_a = sinks["a"].audio()
    assert tone_level(audio_a, 8000, 660) > tone_level(audio_a, 8000, 440) + 40


def test_held_participant_gets_nothing_and_removed_one_nothing_more() -> None:
    mixer, sinks, sources = conference({k: "PCMU" for k in FREQS}, FREQS)
    mixer.get("a").sending = False
    run(mixer, sources, 10)
    assert sinks["a"].frames == [] and len(sinks["b"].frames) == 10
    mixer.remove("b")
    sources.pop("b")
    before = len(sinks["b"].frames)
    now = run(mixer, sources, 10, start=0.2)
    mixer.receive("b", 0, 1, b"\xff" * 160, now)  # a late packet of the gone participant
    mixer.tick(now)
    assert len(sinks["b"].frames) == before and "b" not in mixer


def test_loud_sum_is_limited_not_clipped() -> None:
    mixer, sinks, sources = conference(
        {k: "PCMU" for k in ("a", "b", "c", "d")},
        {"a": 300.0, "b": 310.0, "c": 320.0, "d": 330.0},
        max_speakers=4,
    )
    for source in sources.values():
        source.frequency = 300.0  # in phase: a 0.9 peak for each listener
    for source in sources.values():
        source.codec = G711Codec("PCMU")
    run(mixer, sources, 30)
    peak = max(np.abs(s.audio()).max() for s in sinks.values())
    assert 0.7 < peak < 1.0
    assert all(mixer.get(k).limited_frames > 0 for k in sinks)


def test_soft_limit_is_transparent_below_threshold_and_monotonic_above() -> None:
    quiet = np.linspace(-0.69, 0.69, 101, dtype=np.float32)
    copy = quiet.copy()
    assert soft_limit(quiet) is False and np.array_equal(quiet, copy)
    loud = np.linspace(-4.0, 4.0, 801, dtype=np.float32)
    assert soft_limit(loud) is True
    assert np.all(np.diff(loud) >= 0) and np.abs(loud).max() <= 1.0
    moderate = np.linspace(-1.5, 1.5, 301, dtype=np.float32)
    soft_limit(moderate)
    assert np.abs(moderate).max() < 0.999


def test_telephone_events_are_reported_not_mixed() -> None:
    reports: list[tuple[str, TelephoneEventReceived]] = []
    mixer = RtpMixer(on_event=lambda key, event: reports.append((key, event)))
    _, sink_a = make(mixer, "a", "PCMU")
    make(mixer, "b", "PCMU")
    for duration in (160, 320, 480):
        payload = bytes(RtpTelephoneEvent(5, duration == 480, 10, duration))
        for _ in range(1 if duration < 480 else 3):  # the end packet three times (§2.5.1.4)
            mixer.receive("b", 101, 5000, payload, 0.0)
    mixer.tick(0.0)
    assert [(k, e.name, e.duration, e.ended) for k, e in reports] == [("b", "5", 0.06, True)]
    assert np.abs(sink_a.audio(skip=0)).max() < 1e-3


def test_duplicate_and_cap_are_refused() -> None:
    mixer = RtpMixer(max_participants=1)
    make(mixer, "a", "PCMU")
    with pytest.raises(RtpMixerError):
        make(mixer, "a", "PCMU")
    with pytest.raises(RtpMixerError):
        make(mixer, "b", "PCMU")


def test_bad_payloads_are_counted_not_raised() -> None:
    mixer = RtpMixer()
    participant, _ = make(mixer, "o", "opus")
    mixer.receive("o", 111, 0, b"\xff\xff\xff", 0.0)
    mixer.receive("o", 99, 0, b"\x00" * 10, 0.0)
    mixer.receive("nobody", 0, 0, b"\x00", 0.0)
    mixer.tick(0.0)
    assert participant.unknown_payload_types == 1
    assert participant.decode_errors + participant.jitter.received == 1


class CountingG711(G711Codec):
    """PCMU that counts its encodes."""

    def __init__(self) -> None:
        super().__init__("PCMU")
        self.encodes = 0

    def encode(self, frame: np.ndarray) -> bytes:
        self.encodes += 1
        return super().encode(frame)


def test_listeners_adding_nothing_share_one_encoding_of_the_mix() -> None:
    mixer = RtpMixer()
    payloads: dict[str, list[bytes]] = {}
    codecs: dict[str, CountingG711] = {}
    for key in ("talker", "l1", "l2", "l3", "muted"):
        codecs[key] = CountingG711()
        payloads[key] = []

        def sink(payload: bytes, pt: int, increment: int, key: str = key) -> bool:
            payloads[key].append(payload)
            return True

        mixer.add(RtpMixerParticipant(key, codecs[key], 0, sink, {0: G711Codec("PCMU")}))
    mixer.get("muted").muted = True
    _PT_OF["talker"] = _PT_OF["muted"] = 0
    run(mixer, {"talker": Source("PCMU", 440.0), "muted": Source("PCMU", 660.0)}, 30)
    listeners = ("l1", "l2", "l3", "muted")
    assert sum(codecs[k].encodes for k in listeners) == 0  # the send group's encoder does it
    assert 25 <= codecs["talker"].encodes <= 30  # its own N-1 frame, once it is a speaker
    assert mixer.encodes == 30 + codecs["talker"].encodes  # the shared mix: once per tick
    for tick in range(30):
        assert len({payloads[k][tick] for k in listeners}) == 1
    audio = np.concatenate([G711Codec("PCMU").decode(p) for p in payloads["l2"][5:]])
    assert tone_level(audio, 8000, 440.0) > tone_level(audio, 8000, 660.0) + 40
    talker = np.concatenate([G711Codec("PCMU").decode(p) for p in payloads["talker"][5:]])
    assert np.abs(talker).max() < 1e-3  # N-1: the talker still does not hear itself


def test_loud_shared_mix_counts_limited_frames_for_every_listener() -> None:
    mixer, sinks, sources = conference(
        {k: "PCMU" for k in ("a", "b", "c", "x", "y")},
        {"a": 300.0, "b": 300.0, "c": 300.0, "x": 0.0, "y": 0.0},
    )
    sources.pop("x"), sources.pop("y")  # listeners only: they share the mix
    run(mixer, sources, 30)
    assert mixer.get("x").limited_frames == mixer.get("y").limited_frames > 0
    assert sinks["x"].frames[-1].tolist() == sinks["y"].frames[-1].tolist()
