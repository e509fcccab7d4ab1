"""Streaming sample-rate conversion between the mixer's rates (8, 16, 48 kHz).

The mixer sums each rate's participants in their own rate and converts the
per-rate sums once per tick (not once per participant), so this runs at most
a few times per tick.  Conversion goes through 48 kHz: zero-stuff by
48000/rate_in, low-pass with a windowed-sinc FIR (Blackman window, cut-off at
0.45 x the lower Nyquist rate), keep every 48000/rate_out-th sample.  The
FIR history is carried across frames, so consecutive frames join without a
click; the group delay is (taps - 1) / 2 samples at 48 kHz (1 ms).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

type Samples = npt.NDArray[np.float32]

BASE_RATE = 48000
SUPPORTED_RATES = (8000, 16000, 48000)


def lowpass_taps(cutoff: float, taps: int) -> npt.NDArray[np.float32]:
    """Windowed-sinc low-pass; `cutoff` as a fraction of the sampling rate."""
    n = np.arange(taps) - (taps - 1) / 2
    h: npt.NDArray[np.float64] = 2 * cutoff * np.sinc(2 * cutoff * n) * np.blackman(taps)
    return (h / h.sum()).astype(np.float32)


class RtpResampler:
    """Converts consecutive frames from `rate_in` to `rate_out`."""

    def __init__(self, rate_in: int, rate_out: int, frame_samples_in: int, taps: int = 97) -> None:
        if rate_in not in SUPPORTED_RATES or rate_out not in SUPPORTED_RATES:
            raise ValueError(f"unsupported rate conversion {rate_in} -> {rate_out}")
        self.rate_in, self.rate_out = rate_in, rate_out
        self.up = BASE_RATE // rate_in
        self.down = BASE_RATE // rate_out
        self.frame_samples_in = frame_samples_in
        self.frame_samples_out = frame_samples_in * self.up // self.down
        cutoff = 0.45 * min(rate_in, rate_out) / BASE_RATE
        # zero-stuffing by `up` divides the level by `up`: the filter gain restores it
        self._taps = lowpass_taps(cutoff, taps) * self.up
        self._buffer = np.zeros(taps - 1 + frame_samples_in * self.up, dtype=np.float32)
        self._history = taps - 1

    def process(self, frame: Samples) -> Samples:
        """One frame in, one frame out (a new array)."""
        if frame.shape[0] != self.frame_samples_in:
            raise ValueError(f"frames must be {self.frame_samples_in} samples")
        buffer, history = self._buffer, self._history
        buffer[:history] = buffer[-history:]
        body = buffer[history:]
        body[:] = 0.0
        body[:: self.up] = frame
        filtered = np.convolve(buffer, self._taps, mode="valid")
        return filtered[:: self.down].astype(np.float32, copy=False)


__all__ = ["BASE_RATE", "SUPPORTED_RATES", "RtpResampler", "lowpass_taps"]
