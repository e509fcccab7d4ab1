"""Voice activity from payloads: libopus' own SILK VAD flags, G.711 levels, RFC 6716 framing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrf.rtp.activity import (
    RtpActivity,
    g711_activity,
    opus_activity,
    opus_frames,
    payload_activity,
)
from mrf.rtp.codec import G711Codec
from mrf.rtp.opus import OpusCodec

RATE = 48000


def tone(n: int, level: float = 0.2, frequency: float = 440.0, rate: int = RATE) -> np.ndarray:
    t = (n * rate // 50 + np.arange(rate // 50)) / rate
    return (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_opus_speech_and_silence_are_told_apart_without_decoding() -> None:
    codec = OpusCodec()
    speech = [opus_activity(codec.encode(tone(i))) for i in range(10)]
    silence = [opus_activity(codec.encode(np.zeros(960, np.float32))) for _ in range(30)]
    assert speech.count(RtpActivity.VOICE) >= 9
    assert silence[-20:] == [RtpActivity.SILENT] * 20  # the encoder's VAD settles quickly


def test_opus_dtx_frames_are_silent_and_celt_only_is_unknown() -> None:
    hybrid_fb_20ms = 15 << 3
    celt_fb_20ms = 31 << 3
    assert opus_activity(bytes([hybrid_fb_20ms])) is RtpActivity.SILENT  # empty frame
    assert opus_activity(bytes([celt_fb_20ms, 0x12])) is RtpActivity.SILENT  # 1 byte: DTX
    assert opus_activity(bytes([celt_fb_20ms, 0xFF, 0x00, 0x11])) is RtpActivity.UNKNOWN
    assert opus_activity(bytes([hybrid_fb_20ms, 0x80, 0x00])) is RtpActivity.VOICE
    assert opus_activity(bytes([hybrid_fb_20ms, 0x7F, 0x00])) is RtpActivity.SILENT
    # SILK 40 ms (config 2): two VAD flags, the second alone is enough
    assert opus_activity(bytes([2 << 3, 0x40, 0x00])) is RtpActivity.VOICE
    assert opus_activity(bytes([2 << 3, 0x20, 0x00])) is RtpActivity.SILENT


def test_opus_frame_layouts_of_rfc6716_section_3_2() -> None:
    toc = 15 << 3
    assert opus_frames(bytes([toc | 1, 1, 2, 3, 4])) == [b"\x01\x02", b"\x03\x04"]
    assert opus_frames(bytes([toc | 1, 1, 2, 3])) is None  # code 1 needs an even length
    assert opus_frames(bytes([toc | 2, 1, 9, 7, 7])) == [b"\x09", b"\x07\x07"]
    assert opus_frames(bytes([toc | 2, 5, 9])) is None
    # code 3, CBR, two frames, 1 octet of padding
    assert opus_frames(bytes([toc | 3, 0x42, 1, 8, 8, 9, 9, 0])) == [b"\x08\x08", b"\x09\x09"]
    # code 3, VBR, three frames of 1, 2 and the rest
    assert opus_frames(bytes([toc | 3, 0x83, 1, 2, 5, 6, 6, 7])) == [b"\x05", b"\x06\x06", b"\x07"]
    assert opus_frames(bytes([toc | 3, 0x80])) is None  # zero frames
    assert opus_frames(b"") is None
    assert opus_activity(bytes([toc | 3])) is RtpActivity.UNKNOWN  # malformed: the decoder says


@given(st.binary(max_size=64))
def test_any_bytes_give_a_hint_and_never_raise(data: bytes) -> None:
    assert payload_activity("opus", data) in RtpActivity
    assert payload_activity("PCMU", data) in RtpActivity


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_g711_level_gate(name: str) -> None:
    codec = G711Codec(name)
    assert g711_activity(codec.encode(np.zeros(160, np.float32)), name) is RtpActivity.SILENT
    quiet = tone(0, level=10 ** (-60 / 20), rate=8000)
    assert g711_activity(codec.encode(quiet), name) is RtpActivity.SILENT
    assert g711_activity(codec.encode(tone(0, 0.05, rate=8000)), name) is RtpActivity.VOICE
    assert payload_activity("G722", b"\x00" * 160) is RtpActivity.UNKNOWN
