"""Adaptive jitter buffer of one participant, sans-I/O (times are passed in).

Decoded audio is written into a ring of samples at the position its RTP
timestamp names (RFC 3550 §5.1), so reordered packets fall into place and
any packet duration (10, 20, 60 ms) works.  The mixer reads one frame per
tick at the playout position, which trails the newest audio by a target
delay.  The target adapts to the interarrival jitter estimated as in
RFC 3550 §6.4.1 / §A.8 (J += (|D| - J) / 16): roughly three times the jitter
plus one frame, between `min_delay` and `max_delay`.

* underrun (the playout caught up with the newest audio while packets are
  still arriving): one frame of silence is played and the playout position
  holds, so the delay grows by a frame;
* too much delay (more than a frame above the target): the excess is
  dropped at once, so the delay shrinks back;
* a packet older than the playout position is late and dropped; a timestamp
  jump beyond the ring, or a pause longer than `idle_timeout`, restarts the
  buffer (new talkspurt, RFC 3551 §4.1);
* pre-roll (:meth:`RtpJitterBuffer.rewind`): the mixer starts hearing a new
  speaker some frames after its speech began; it moves the playout back over
  the frames already played unheard and holds that much extra delay until
  :meth:`RtpJitterBuffer.release`, so the first syllable is not lost.

32-bit RTP timestamps are unwrapped to 64-bit ones.  Every counter is an
attribute; the ring is allocated once, so steady state allocates nothing but
the arrays the codec hands in.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

type Samples = npt.NDArray[np.float32]

_TS_MOD = 1 << 32
_TS_HALF = 1 << 31


class RtpJitterBuffer:
    """Sample ring with an adaptive playout delay for one source."""

    def __init__(
        self,
        sample_rate: int,
        frame_samples: int,
        *,
        clock_rate: int | None = None,
        min_delay: float = 0.020,
        max_delay: float = 0.200,
        capacity: float = 1.0,
        idle_timeout: float = 0.5,
    ) -> None:
        if not 0 < min_delay <= max_delay < capacity:
            raise ValueError("need 0 < min_delay <= max_delay < capacity")
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.clock_rate = clock_rate or sample_rate
        self._scale = sample_rate // self.clock_rate  # G.722: 2 samples per clock tick
        if self._scale * self.clock_rate != sample_rate:
            raise ValueError("sample rate must be a multiple of the RTP clock rate")
        self.min_delay, self.max_delay, self.idle_timeout = min_delay, max_delay, idle_timeout
        self._size = int(sample_rate * capacity)
        self._ring = np.zeros(self._size, dtype=np.float32)
        self._out = np.zeros(frame_samples, dtype=np.float32)
        self.jitter = 0.0  # seconds, RFC 3550 §A.8 estimator
        self.received = self.late = self.resets = self.underruns = 0
        self.dropped_samples = self.concealed_samples = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self._last_ts: int | None = None  # last raw 32-bit timestamp
        self._last_ext = 0  # its unwrapped value, in samples
        self._play: int | None = None  # playout position, unwrapped samples
        self._end = 0  # one past the newest written sample
        self._filled_to = 0  # everything below this position is written or zeroed
        self._transit: float | None = None
        self._last_arrival = 0.0
        self._origin = 0  # first position written since the (re)start
        self._hold = 0  # extra delay (samples) kept by rewind() until release()

    @property
    def target_delay(self) -> float:
        """Seconds of audio held back: 3 x jitter + one frame, clamped."""
        frame = self.frame_samples / self.sample_rate
        return min(max(3 * self.jitter + frame, self.min_delay), self.max_delay)

    @property
    def delay(self) -> float:
        """Seconds of audio between the playout position and the newest sample."""
        if self._play is None:
            return 0.0
        return max(self._end - self._play, 0) / self.sample_rate

    def _unwrap(self, timestamp: int) -> int:
        if self._last_ts is None:
            ext = timestamp * self._scale
        else:
            diff = ((timestamp - self._last_ts + _TS_HALF) % _TS_MOD) - _TS_HALF
            ext = self._last_ext + diff * self._scale
        return ext

    def put(self, timestamp: int, samples: Samples, now: float) -> bool:
        """Store decoded audio starting at RTP `timestamp`; False if late or dropped."""
        count = samples.shape[0]
        if count == 0 or count > self._size // 2:
            return False
        if self._last_ts is not None and now - self._last_arrival > self.idle_timeout:
            self.resets += 1
            self._reset_state()
        start = self._unwrap(timestamp)
        if self._play is not None and abs(start - self._end) > self._size // 2:
            self.resets += 1  # timestamp jump: new source or a long gap
            self._reset_state()
            start = timestamp * self._scale
        self._update_jitter(timestamp, now)
        self._last_arrival = now
        if start >= (self._last_ext if self._last_ts is not None else start):
            self._last_ts, self._last_ext = timestamp, start
        if self._play is None:
            self._play = start - int(self.target_delay * self.sample_rate)
            self._end = self._filled_to = self._origin = self._play
        if start + count <= self._play:
            self.late += 1
            return False
        self._clear_gap(start)
        self._write(start, samples)
        self._end = max(self._end, start + count)
        self._filled_to = max(self._filled_to, start + count)
        self.received += 1
        return True

    def _update_jitter(self, timestamp: int, now: float) -> None:
        """J += (|D| - J) / 16 in seconds. # RFC 3550 §6.4.1"""
        transit = now - timestamp / self.clock_rate
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < 1.0:  # ignore wraps and jumps (reset handles those)
                self.jitter += (d - self.jitter) / 16
        self._transit = transit

    def _clear_gap(self, start: int) -> None:
        """Zero the ring between the last written sample and `start` (lost audio)."""
        if start > self._filled_to:
            gap = min(start - self._filled_to, self._size)
            self._ring_fill(self._filled_to, gap)
            self._filled_to = start

    def _ring_fill(self, position: int, count: int) -> None:
        index = position % self._size
        first = min(count, self._size - index)
        self._ring[index : index + first] = 0.0
        self._ring[: count - first] = 0.0

    def _write(self, position: int, samples: Samples) -> None:
        index = position % self._size
        first = min(samples.shape[0], self._size - index)
        self._ring[index : index + first] = samples[:first]
        self._ring[: samples.shape[0] - first] = samples[first:]

    def read(self, now: float) -> Samples | None:
        """The next frame (a view valid until the next call), or None when silent."""
        if self._play is None:
            return None
        if now - self._last_arrival > self.idle_timeout:
            self.resets += 1
            self._reset_state()
            return None
        n = self.frame_samples
        if self._play >= self._end:
            self.underruns += 1  # hold the position: the delay grows by this frame
            return None
        available = min(self._end - self._play, n)
        index = self._play % self._size
        first = min(available, self._size - index)
        out = self._out
        out[:first] = self._ring[index : index + first]
        out[first:available] = self._ring[: available - first]
        if available < n:
            out[available:] = 0.0
            self.concealed_samples += n - available
        self._play += n
        self._filled_to = max(self._filled_to, self._play)
        self._shrink()
        return out

    def _shrink(self) -> None:
        """Drop audio beyond the target delay plus a frame of hysteresis."""
        assert self._play is not None
        target = int(self.target_delay * self.sample_rate) + self._hold
        excess = self._end - self._play - target
        if excess > self.frame_samples:
            self._play += excess
            self.dropped_samples += excess

    def rewind(self, samples: int) -> int:
        """Play again up to `samples` already read (pre-roll); returns how many."""
        if self._play is None:
            return 0
        back = max(min(samples, self._play - self._origin, self._size // 2), 0)
        self._play -= back
        self._hold += back
        return back

    def release(self) -> None:
        """Drop the pre-roll delay: the next read shrinks back to the target."""
        self._hold = 0

    def skip(self, samples: int) -> None:
        """Advance the playout over ticks the mixer missed."""
        if self._play is not None:
            self._play += samples
            self._filled_to = max(self._filled_to, self._play)


__all__ = ["RtpJitterBuffer"]
