"""Streaming rate conversion keeps a tone's frequency and level, without clicks."""

from __future__ import annotations

import numpy as np
import pytest

from mrf.rtp.resample import RtpResampler


@pytest.mark.parametrize(
    ("rate_in", "rate_out"), [(8000, 48000), (48000, 8000), (16000, 8000), (8000, 16000)]
)
def test_tone_survives_conversion(rate_in: int, rate_out: int) -> None:
    n = rate_in // 50
    resampler = RtpResampler(rate_in, rate_out, n)
    t = np.arange(50 * n) / rate_in
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = np.concatenate([resampler.process(tone[i * n : (i + 1) * n]) for i in range(50)])
    assert out.shape[0] == 50 * resampler.frame_samples_out
    steady = out[rate_out // 10 :]
    assert abs(np.abs(steady).max() - 0.5) < 0.03
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(steady.shape[0])))
    assert abs(np.fft.rfftfreq(steady.shape[0], 1 / rate_out)[spectrum.argmax()] - 1000) < 20
    assert np.abs(np.diff(steady)).max() < 0.5 * 2 * np.pi * 1000 / rate_out * 1.1  # no clicks


def test_content_above_the_new_nyquist_is_filtered() -> None:
    resampler = RtpResampler(48000, 8000, 960)
    t = np.arange(960 * 10) / 48000
    tone = (0.5 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    out = np.concatenate([resampler.process(tone[i * 960 : (i + 1) * 960]) for i in range(10)])
    assert np.abs(out[400:]).max() < 0.01  # would alias to 2 kHz without the low-pass


def test_bad_rates_and_frames_are_refused() -> None:
    with pytest.raises(ValueError):
        RtpResampler(44100, 8000, 882)
    with pytest.raises(ValueError):
        RtpResampler(8000, 16000, 160).process(np.zeros(100, np.float32))
