"""Active-speaker selection: start, hangover, level hysteresis, slots, floor holders."""

from __future__ import annotations

import pytest

from mrf.rtp.speakers import (
    SILENT,
    RtpSpeakerConfig,
    RtpSpeakerConfigError,
    RtpSpeakerSelector,
    frame_level,
)

TICK = 0.020


class Clock:
    def __init__(self, selector: RtpSpeakerSelector) -> None:
        self.selector = selector
        self.now = 0.0

    def run(self, levels: dict[str, float], ticks: int = 1, floor: tuple[str, ...] = ()) -> None:
        for _ in range(ticks):
            self.selector.update(levels, self.now, floor)
            self.now += TICK


def test_one_click_is_not_speech_two_loud_frames_are() -> None:
    clock = Clock(RtpSpeakerSelector())
    clock.run({"a": -20.0})
    clock.run({"a": SILENT})
    assert not clock.selector.speakers
    change = clock.selector.update({"a": -20.0}, clock.now)
    assert change.started == ()
    change = clock.selector.update({"a": -20.0}, clock.now + TICK)
    assert change.started == ("a",) and clock.selector.speakers == {"a"}


def test_pause_shorter_than_hangover_keeps_the_speaker_longer_one_stops_it() -> None:
    selector = RtpSpeakerSelector(RtpSpeakerConfig(hangover=0.5))
    clock = Clock(selector)
    clock.run({"a": -20.0}, 10)
    clock.run({}, 20)  # 400 ms between words
    assert selector.is_speaking("a")
    clock.run({"a": -20.0}, 2)
    clock.run({}, 24)  # 480 ms: still within the 500 ms hangover
    assert selector.is_speaking("a")
    change = selector.update({}, clock.now + 0.1)
    assert change.stopped == ("a",) and not selector.speakers


def test_level_hysteresis_keeps_a_speaker_but_starts_nobody() -> None:
    config = RtpSpeakerConfig(start_level=-40.0, stop_level=-50.0, hangover=0.1)
    selector = RtpSpeakerSelector(config)
    clock = Clock(selector)
    clock.run({"a": -30.0}, 3)
    clock.run({"a": -45.0, "b": -45.0}, 50)  # between the two levels for a second
    assert selector.speakers == {"a"}
    clock.run({"a": -55.0, "b": -45.0}, 10)  # below stop_level past the hangover
    assert selector.speakers == set()


def test_slots_are_capped_and_a_newcomer_needs_the_margin_and_min_talk() -> None:
    config = RtpSpeakerConfig(max_speakers=2, min_talk=1.0, switch_margin=6.0)
    selector = RtpSpeakerSelector(config)
    clock = Clock(selector)
    clock.run({"a": -20.0, "b": -30.0}, 5)
    assert selector.speakers == {"a", "b"}
    clock.run({"a": -20.0, "b": -30.0, "c": -26.0}, 60)  # only 4 dB above b
    assert selector.speakers == {"a", "b"}
    clock.run({"a": -20.0, "b": -30.0, "c": -10.0}, 2)  # loud, and b has talked > 1 s
    assert selector.speakers == {"a", "c"}  # the quietest speaker gave up its slot
    assert selector.level("c") > selector.level("a") > selector.level("b")


def test_a_fresh_speaker_keeps_its_slot_for_min_talk() -> None:
    config = RtpSpeakerConfig(max_speakers=1, min_talk=1.0)
    selector = RtpSpeakerSelector(config)
    clock = Clock(selector)
    clock.run({"a": -40.0}, 2)
    clock.run({"a": -40.0, "b": -10.0}, 30)  # 600 ms: a may not be displaced yet
    assert selector.speakers == {"a"}
    clock.run({"a": -40.0, "b": -10.0}, 25)
    assert selector.speakers == {"b"}


def test_floor_holders_are_always_heard_and_take_no_slot() -> None:
    selector = RtpSpeakerSelector(RtpSpeakerConfig(max_speakers=1))
    clock = Clock(selector)
    change = selector.update({}, clock.now, ("chair",))
    assert change.started == ("chair",)
    clock.run({"a": -20.0, "chair": SILENT}, 3, floor=("chair",))
    assert selector.speakers == {"a", "chair"}
    change = selector.update({"a": -20.0}, clock.now, ())
    assert change.stopped == ("chair",)


def test_removed_participant_is_forgotten_and_quiet_ones_are_pruned() -> None:
    selector = RtpSpeakerSelector()
    clock = Clock(selector)
    clock.run({"a": -20.0, "b": -70.0}, 3)
    selector.remove("a")
    assert selector.speakers == set() and selector.level("a") == SILENT
    clock.run({}, 200)
    assert selector.level("b") == SILENT  # pruned: a tick's work follows who is heard


def test_frame_level_and_config_checks() -> None:
    assert frame_level(1.0) == 0.0 and frame_level(0.01) == pytest.approx(-20.0)
    assert frame_level(0.0) == SILENT
    for bad in (
        {"max_speakers": 0},
        {"start_level": -50.0, "stop_level": -40.0},
        {"start_ticks": 0},
        {"hangover": -1.0},
    ):
        with pytest.raises(RtpSpeakerConfigError):
            RtpSpeakerConfig(**bad)  # type: ignore[arg-type]


def test_a_lost_frame_is_not_a_pause_but_a_silence_yields_the_slot() -> None:
    config = RtpSpeakerConfig(max_speakers=1, min_talk=10.0)  # no displacement by loudness
    selector = RtpSpeakerSelector(config)
    clock = Clock(selector)
    clock.run({"a": -20.0}, 10)
    clock.run({"a": -20.0, "b": -20.0}, 3)
    clock.run({"b": -20.0}, 2)  # two of a's frames lost or late: 40 ms
    clock.run({"a": -20.0, "b": -20.0}, 3)
    assert selector.speakers == {"a"}
    clock.run({"b": -20.0}, 7)  # a silent for 140 ms while b talks: a pause
    assert selector.speakers == {"b"}
