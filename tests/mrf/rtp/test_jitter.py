"""The adaptive jitter buffer: order, loss, late packets, adaptation, resets, wrap."""

from __future__ import annotations

import numpy as np

from mrf.rtp.jitter import RtpJitterBuffer


def first(played: np.ndarray | None) -> float | None:
    """The first sample of a read (the buffer reuses its output array)."""
    return None if played is None else round(float(played[0]), 3)


def frame(value: float, n: int = 160) -> np.ndarray:
    return np.full(n, value, dtype=np.float32)


def test_reordered_packets_play_in_timestamp_order() -> None:
    jb = RtpJitterBuffer(8000, 160, min_delay=0.04)
    jb.put(0, frame(0.1), 0.0)
    played = [first(jb.read(0.0)), first(jb.read(0.02))]  # the initial 40 ms delay
    jb.put(320, frame(0.3), 0.04)  # overtakes the packet at 160
    played.append(first(jb.read(0.04)))
    jb.put(160, frame(0.2), 0.045)
    played += [first(jb.read(0.06)), first(jb.read(0.08))]
    assert played == [0.0, 0.0, 0.1, 0.2, 0.3]
    assert jb.late == 0 and jb.underruns == 0


def test_lost_packet_is_silence_and_late_one_is_dropped() -> None:
    jb = RtpJitterBuffer(8000, 160)
    jb.put(0, frame(0.1), 0.0)
    played = [first(jb.read(0.0)), first(jb.read(0.02))]
    jb.put(320, frame(0.3), 0.04)  # 160 is lost
    played += [first(jb.read(0.04)), first(jb.read(0.06))]
    assert played == [0.0, 0.1, 0.0, 0.3]
    assert jb.put(160, frame(0.2), 0.08) is False and jb.late == 1
    assert jb.read(0.08) is None and jb.underruns == 1  # nothing newer: the playout holds


def test_underrun_holds_then_target_grows_with_jitter() -> None:
    jb = RtpJitterBuffer(8000, 160)
    start = jb.target_delay
    now = 0.0
    for i in range(200):  # packets arrive in bursts of five every 100 ms
        now = (i // 5) * 0.1
        jb.put(i * 160, frame(0.1), now)
    assert jb.jitter > 0.01 and jb.target_delay > start
    assert jb.target_delay <= jb.max_delay


def test_excess_delay_is_dropped_back_to_target() -> None:
    jb = RtpJitterBuffer(8000, 160)
    for i in range(20):  # a burst of 400 ms at once
        jb.put(i * 160, frame(0.1), 0.0)
    jb.read(0.0)
    assert jb.delay <= jb.target_delay + 160 / 8000 and jb.dropped_samples > 0


def test_timestamp_wrap_and_jump_and_idle() -> None:
    jb = RtpJitterBuffer(8000, 160)
    base = (1 << 32) - 320
    for i in range(6):
        assert jb.put((base + i * 160) & 0xFFFFFFFF, frame(0.1), i * 0.02)
        jb.read(i * 0.02)
    assert jb.resets == 0 and jb.late == 0
    jb.put(123456789, frame(0.2), 0.14)  # a jump: new talkspurt or new source
    assert jb.resets == 1
    assert jb.read(5.0) is None and jb.resets == 2  # silent for longer than idle_timeout


def test_g722_clock_scaling_and_oversized_input() -> None:
    jb = RtpJitterBuffer(16000, 320, clock_rate=8000)
    assert jb.put(0, frame(0.1, 320), 0.0) and jb.put(160, frame(0.2, 320), 0.02)
    assert jb.put(0, np.zeros(20000, np.float32), 0.03) is False
