"""Active-speaker selection of one conference, sans-I/O: levels and `now` in, changes out.

Each tick the mixer hands in the level (dBFS of the frame it would play) of
every participant it measured; a participant not measured this tick is
silent.  The selection keeps at most `max_speakers` active speakers, plus
every participant holding a floor (BFCP, RFC 8855: a floor holder is always
heard and does not take a slot):

* **start**: a participant starts talking after `start_ticks` consecutive
  frames at or above `start_level` (one loud click is not speech);
* **stay**: a speaker keeps talking while its frames stay above the lower
  `stop_level`, and for `hangover` seconds after the last such frame (pauses
  between words do not drop it: hysteresis in level *and* in time);
* **compete**: with every slot taken, a newcomer takes the slot of a
  speaker in its hangover (heard silent now, or with no frame at all for more
  than `PAUSE`: one lost or late packet is not a pause; the longest silent
  first), or else of the quietest speaker that has talked for at least
  `min_talk` seconds, and then only when its smoothed level is
  `switch_margin` dB above that one's.

Levels are smoothed in the power domain (exponential average over about
`smoothing` ticks) for the competition; the start/stay tests use the raw
frame levels so that the reaction is quick.  Every method takes the current
time explicitly; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

SILENT = -120.0  # dBFS of a participant that sent nothing audible (or was not measured)
_FORGET_POWER = 1e-9  # -90 dBFS smoothed: a participant this quiet is forgotten until heard
PAUSE = 0.05  # seconds with no frame at all before a missing speaker counts as paused


class RtpSpeakerConfigError(ValueError):
    """The selection parameters are inconsistent."""


@dataclass(frozen=True, slots=True)
class RtpSpeakerConfig:
    """Parameters of the selection (settings ``mixer.*``)."""

    max_speakers: int = 3
    start_level: float = -45.0  # dBFS
    stop_level: float = -55.0  # dBFS, below start_level: the level hysteresis
    start_ticks: int = 2  # 40 ms of speech before a participant is mixed
    hangover: float = 0.6  # seconds
    min_talk: float = 1.0  # seconds before a speaker can lose its slot to a louder one
    switch_margin: float = 6.0  # dB
    smoothing: int = 10  # ticks

    def __post_init__(self) -> None:
        if self.max_speakers < 1:
            raise RtpSpeakerConfigError("max_speakers must be at least 1")
        if self.stop_level > self.start_level:
            raise RtpSpeakerConfigError("stop_level must not be above start_level")
        if self.start_ticks < 1 or self.smoothing < 1:
            raise RtpSpeakerConfigError("start_ticks and smoothing must be at least 1")
        if self.hangover < 0 or self.min_talk < 0 or self.switch_margin < 0:
            raise RtpSpeakerConfigError("hangover, min_talk and switch_margin must be >= 0")


@dataclass(frozen=True, slots=True)
class SpeakersChanged:
    """Who started and who stopped talking at one tick (both in key order)."""

    started: tuple[str, ...]
    stopped: tuple[str, ...]


@dataclass(slots=True)
class _Talker:
    power: float = 0.0  # smoothed linear power
    loud_ticks: int = 0
    last_voice: float = -math.inf
    since: float = 0.0  # when it started talking
    talking: bool = False
    last_heard: float = -math.inf  # the last tick it had a frame (voice or silence)

    @property
    def level(self) -> float:
        return 10 * math.log10(self.power) if self.power > 1e-12 else SILENT


def frame_level(power: float) -> float:
    """dBFS of a frame's mean square (1.0 is a full-scale square wave)."""
    return 10 * math.log10(power) if power > 1e-12 else SILENT


@dataclass(slots=True)
class RtpSpeakerSelector:
    """The set of active speakers of one conference."""

    config: RtpSpeakerConfig = field(default_factory=RtpSpeakerConfig)
    _talkers: dict[str, _Talker] = field(default_factory=dict)
    _forced: frozenset[str] = frozenset()

    @property
    def speakers(self) -> frozenset[str]:
        """Everyone heard now: talking participants and floor holders."""
        return frozenset(k for k, t in self._talkers.items() if t.talking) | self._forced

    def is_speaking(self, key: str) -> bool:
        talker = self._talkers.get(key)
        return key in self._forced or (talker is not None and talker.talking)

    def level(self, key: str) -> float:
        """Smoothed level of `key` in dBFS (SILENT when unknown)."""
        talker = self._talkers.get(key)
        return talker.level if talker is not None else SILENT

    def remove(self, key: str) -> None:
        """The participant left: it is no longer a speaker (no event)."""
        self._talkers.pop(key, None)
        self._forced -= {key}

    def update(
        self, levels: Mapping[str, float], now: float, floor_holders: Collection[str] = ()
    ) -> SpeakersChanged:
        """One tick: `levels` of the measured participants (dBFS); others are silent."""
        before = self.speakers
        self._forced = frozenset(floor_holders)
        alpha = 1.0 / self.config.smoothing
        for key, level in levels.items():
            talker = self._talkers.get(key)
            if talker is None:
                talker = self._talkers[key] = _Talker()
            self._measure(talker, level, now, alpha)
            talker.last_heard = now
        faded = []
        for key, talker in self._talkers.items():
            if key not in levels:
                self._measure(talker, SILENT, now, alpha)
                if not talker.talking and talker.power < _FORGET_POWER:
                    faded.append(key)
        for key in faded:  # only the recently heard are kept: a tick is O(measured)
            del self._talkers[key]
        self._stop_silent(now)
        self._start_loud(now)
        after = self.speakers
        return SpeakersChanged(tuple(sorted(after - before)), tuple(sorted(before - after)))

    def _measure(self, talker: _Talker, level: float, now: float, alpha: float) -> None:
        power = 10 ** (level / 10) if level > SILENT else 0.0
        talker.power += (power - talker.power) * alpha
        talker.loud_ticks = talker.loud_ticks + 1 if level >= self.config.start_level else 0
        if level >= self.config.stop_level and (talker.talking or talker.loud_ticks):
            talker.last_voice = now

    def _stop_silent(self, now: float) -> None:
        for talker in self._talkers.values():
            if talker.talking and now - talker.last_voice > self.config.hangover:
                talker.talking = False

    def _start_loud(self, now: float) -> None:
        config = self.config
        ready = [
            (key, t)
            for key, t in self._talkers.items()
            if not t.talking and key not in self._forced and t.loud_ticks >= config.start_ticks
        ]
        ready.sort(key=lambda item: (-item[1].power, item[0]))
        for _, talker in ready:
            slots = [
                (k, t) for k, t in self._talkers.items() if t.talking and k not in self._forced
            ]
            if len(slots) >= config.max_speakers:
                weakest = self._yielding(slots, talker, now)
                if weakest is None:
                    continue
                weakest.talking = False
            talker.talking, talker.since = True, now

    def _yielding(
        self, slots: list[tuple[str, _Talker]], newcomer: _Talker, now: float
    ) -> _Talker | None:
        """The speaker whose slot `newcomer` takes, if any (see the module doc)."""
        paused = [item for item in slots if self._paused(item[1], now)]
        if paused:  # a speaker in its hangover yields to one who talks now
            return min(paused, key=lambda item: (item[1].last_voice, item[0]))[1]
        weakest = min(
            (item for item in slots if now - item[1].since >= self.config.min_talk),
            key=lambda item: (item[1].power, item[0]),
            default=None,
        )
        if weakest is None or newcomer.level < weakest[1].level + self.config.switch_margin:
            return None
        return weakest[1]

    @staticmethod
    def _paused(talker: _Talker, now: float) -> bool:
        """Silent now: heard below the voice levels this tick, or not heard for over PAUSE."""
        if talker.last_voice >= now:
            return False
        return talker.last_heard >= now or now - talker.last_heard > PAUSE


__all__ = [
    "SILENT",
    "RtpSpeakerConfig",
    "RtpSpeakerConfigError",
    "RtpSpeakerSelector",
    "SpeakersChanged",
    "frame_level",
]
