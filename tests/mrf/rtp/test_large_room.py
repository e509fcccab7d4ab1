"""Large-room mixing in-process: who is heard, what is decoded and encoded, and how it sounds.

Speakers send tones, listeners send what an encoder makes of silence; every
sink decodes what it gets with a decoder of its own, as a participant would.
"""

from __future__ import annotations

import numpy as np
import pytest

from mrf.rtp.codec import RtpCodec, create_codec
from mrf.rtp.mixer import RtpMixer, RtpMixerParticipant
from mrf.rtp.opus import OpusCodec
from mrf.rtp.speakers import RtpSpeakerConfig

TICK = 0.020
PT = {"opus": 111, "PCMU": 0}
RTPMAP = {"opus": ("opus", 48000), "PCMU": ("PCMU", 8000)}


class Member:
    """One participant: a sender (tone or silence) and a sink that decodes what it hears."""

    def __init__(self, mixer: RtpMixer, key: str, codec: str, frequency: float = 0.0) -> None:
        self.key, self.codec_name, self.frequency = key, codec, frequency
        self.encoder: RtpCodec = create_codec(*RTPMAP[codec])
        self.decoder: RtpCodec = create_codec(*RTPMAP[codec])
        self.heard: list[np.ndarray] = []
        self.payloads: list[bytes] = []
        self.level = 0.2
        self._previous = 0.0
        self.n = 0
        self.timestamp = 1234
        self.participant = RtpMixerParticipant(
            key, create_codec(*RTPMAP[codec]), PT[codec], self.sink,
            {PT[codec]: create_codec(*RTPMAP[codec])},
        )  # fmt: skip
        mixer.add(self.participant)

    def sink(self, payload: bytes, pt: int, increment: int) -> bool:
        self.payloads.append(payload)
        self.heard.append(self.decoder.decode(payload))
        return True

    def packet(self) -> tuple[int, bytes]:
        count, rate = self.encoder.frame_samples, self.encoder.sample_rate
        t = (self.n + np.arange(count)) / rate
        self.n += count
        level = self.level if self.frequency else 0.0
        envelope = np.linspace(self._previous, level, count)  # a voice starts smoothly
        self._previous = level
        frame = (envelope * np.sin(2 * np.pi * self.frequency * t)).astype(np.float32)
        timestamp = self.timestamp
        self.timestamp += self.encoder.timestamp_increment
        return timestamp, self.encoder.encode(frame)

    def audio(self, start: int = 0, end: int | None = None) -> np.ndarray:
        return np.concatenate(self.heard[start:end])


def run(mixer: RtpMixer, members: list[Member], ticks: int, now: float) -> float:
    for _ in range(ticks):
        for member in members:
            timestamp, payload = member.packet()
            mixer.receive(member.key, PT[member.codec_name], timestamp, payload, now)
        mixer.tick(now)
        now += TICK
    return now


def band_level(audio: np.ndarray, rate: int, frequency: float, width: float = 20.0) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / rate)
    band = np.abs(freqs - frequency) < width
    return float(20 * np.log10(spectrum[band].max() + 1e-9))


def rest_level(audio: np.ndarray, rate: int, tones: list[float], width: float = 40.0) -> float:
    """The loudest spectral line away from every tone (and above 100 Hz)."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[0])))
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / rate)
    rest = freqs > 100
    for tone in tones:
        rest &= np.abs(freqs - tone) > width
    return float(20 * np.log10(spectrum[rest].max() + 1e-9))


TONES = {"s1": 440.0, "s2": 700.0, "s3": 1100.0}


def test_three_speakers_fifty_listeners_everyone_hears_the_right_tones() -> None:
    mixer = RtpMixer()
    speakers = [Member(mixer, key, "opus", f) for key, f in TONES.items()]
    listeners = [Member(mixer, f"l{i}", "opus") for i in range(50)]
    everyone = speakers + listeners
    run(mixer, everyone, 60, 0.0)
    assert mixer.speakers == set(TONES)
    start = 20  # after the start, the pre-roll and the encoders' own start-up
    for listener in listeners:
        audio = listener.audio(start)
        rest = rest_level(audio, 48000, list(TONES.values()))
        for frequency in TONES.values():
            assert band_level(audio, 48000, frequency) >= rest + 20, listener.key
    for speaker in speakers:
        audio = speaker.audio(start)
        others = [f for k, f in TONES.items() if k != speaker.key]
        rest = rest_level(audio, 48000, list(TONES.values()))
        for frequency in others:
            assert band_level(audio, 48000, frequency) >= rest + 20, speaker.key
        # it does not hear itself: its own tone is as low as the noise between the lines
        own = band_level(audio, 48000, speaker.frequency)
        assert own < min(band_level(audio, 48000, f) for f in others) - 30, speaker.key
    # only the speakers' packets were decoded; one shared encoding + one per speaker a tick
    assert all(member.participant.decoded <= 2 for member in listeners)
    assert all(member.participant.decoded >= 59 for member in speakers)
    assert mixer.encodes <= 60 * (1 + len(speakers))
    assert len({listener.payloads[-1] for listener in listeners}) == 1


def test_a_fourth_talker_waits_for_a_slot_and_the_first_syllable_is_kept() -> None:
    mixer = RtpMixer(speakers=RtpSpeakerConfig(max_speakers=3, hangover=0.2))
    speakers = [Member(mixer, key, "PCMU", f) for key, f in TONES.items()]
    late = Member(mixer, "late", "PCMU", 1500.0)
    listener = Member(mixer, "l", "PCMU")
    late.level = 0.0
    now = run(mixer, [*speakers, late, listener], 30, 0.0)
    assert mixer.speakers == set(TONES)
    speakers[0].level = 0.0  # s1 stops; the late one starts at once
    late.level = 0.2
    onset = len(listener.heard)
    run(mixer, [*speakers, late, listener], 40, now)
    assert mixer.speakers == {"s2", "s3", "late"}
    audio = listener.audio(onset)
    # pre-roll: the late talker is heard (nearly) from its very first frame
    frames = audio.reshape(-1, 160)
    heard = [band_level(frame, 8000, 1500.0, 60) > band_level(frame, 8000, 2500.0, 60) + 20
             for frame in frames]  # fmt: skip
    first = heard.index(True)
    assert first <= 4  # the jitter buffer's delay plus the pre-roll's catch-up
    assert all(heard[first:])


def test_speaker_changes_fade_without_clicks() -> None:
    config = RtpSpeakerConfig(max_speakers=1, min_talk=0.2, switch_margin=3.0)
    mixer = RtpMixer(speakers=config)
    quiet = Member(mixer, "quiet", "PCMU", 100.0)
    loud = Member(mixer, "loud", "PCMU", 120.0)
    listener = Member(mixer, "l", "PCMU")
    quiet.level, loud.level = 0.4, 0.0
    now = run(mixer, [quiet, loud, listener], 30, 0.0)
    loud.level = 0.8  # displaces the quiet one, which is still talking
    run(mixer, [quiet, loud, listener], 30, now)
    assert mixer.speakers == {"loud"}
    audio = listener.audio(20)
    # the largest step between samples is what the tones' slopes allow, not a jump
    slope = 2 * np.pi * 120.0 / 8000 * 0.8 + 2 * np.pi * 100.0 / 8000 * 0.4
    assert np.abs(np.diff(audio)).max() < 1.2 * slope + 0.01


@pytest.mark.parametrize("copy_state", [True, False])
def test_opus_listener_promoted_to_speaker_continues_the_stream_it_decodes(
    copy_state: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not copy_state:  # the measure below must be able to fail
        monkeypatch.setattr(OpusCodec, "copy_encoder_from", lambda self, other: None)
    mixer = RtpMixer(speakers=RtpSpeakerConfig(max_speakers=2))
    talker = Member(mixer, "talker", "opus", 440.0)
    riser = Member(mixer, "riser", "opus", 3000.0)
    ear = Member(mixer, "ear", "opus")
    riser.level = 0.0
    now = run(mixer, [talker, riser, ear], 40, 0.0)
    assert riser.payloads[-10:] == ear.payloads[-10:]  # both on the shared stream
    riser.level = 0.02  # speaks quietly: what it hears is still the talker's tone alone
    run(mixer, [talker, riser, ear], 20, now)
    assert mixer.speakers == {"talker", "riser"}
    own = next(i for i in range(40, 60) if riser.payloads[i] != ear.payloads[i])
    window = riser.audio(own - 1, own + 3)
    clean = band_level(window, 48000, 440.0) - rest_level(window, 48000, [440.0], 60)
    print(f"tone above the rest around the switch: {clean:.1f} dB")
    assert (clean > 30) is copy_state


def test_what_a_muted_participant_said_is_never_heard_not_even_as_pre_roll() -> None:
    mixer = RtpMixer()
    talker = Member(mixer, "talker", "PCMU", 1000.0)
    listener = Member(mixer, "l", "PCMU")
    talker.participant.muted = True
    now = run(mixer, [talker, listener], 20, 0.0)
    talker.frequency = 400.0  # a new tone only after the unmute
    talker.participant.muted = False
    run(mixer, [talker, listener], 30, now)
    assert mixer.speakers == {"talker"}
    audio = listener.audio()
    assert band_level(audio, 8000, 1000.0) < band_level(audio, 8000, 400.0) - 40
