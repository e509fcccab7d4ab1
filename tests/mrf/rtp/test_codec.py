"""G.711 tables against FFmpeg's codecs (an independent implementation), G.722, Opus."""

from __future__ import annotations

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrf.rtp.codec import (
    ALAW_DECODE,
    ALAW_ENCODE,
    ULAW_DECODE,
    ULAW_ENCODE,
    G711Codec,
    RtpCodecError,
    create_codec,
)
from mrf.rtp.opus import OpusCodec
from mrf.rtp.opus import version as opus_version

_FFMPEG = {
    "PCMU": ("pcm_mulaw", ULAW_DECODE, ULAW_ENCODE),
    "PCMA": ("pcm_alaw", ALAW_DECODE, ALAW_ENCODE),
}


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_g711_decode_table_equals_ffmpeg(name: str) -> None:
    ffmpeg, decode, _ = _FFMPEG[name]
    decoder = av.CodecContext.create(ffmpeg, "r")
    decoder.sample_rate, decoder.layout = 8000, "mono"
    (frame,) = decoder.decode(av.Packet(bytes(range(256))))
    assert np.array_equal(frame.to_ndarray()[0], (decode * 32768).astype(np.int16))


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_g711_encode_is_within_one_step_of_ffmpeg_and_round_trips(name: str) -> None:
    ffmpeg, decode, encode = _FFMPEG[name]
    encoder = av.CodecContext.create(ffmpeg, "w")
    encoder.sample_rate, encoder.layout, encoder.format = 8000, "mono", "s16"
    samples = np.arange(-32768, 32768, dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 8000
    reference = np.frombuffer(b"".join(bytes(p) for p in encoder.encode(frame)), np.uint8)
    ours = encode[samples.view(np.uint16)]
    error_ours = np.abs(decode[ours] * 32768 - samples)
    error_ffmpeg = np.abs(decode[reference] * 32768 - samples)
    # both quantise to a neighbouring level: the same code or the adjacent one at a boundary
    assert np.mean(ours == reference) > 0.98
    step = np.abs(decode[ours] - decode[reference]) * 32768
    assert np.all(error_ours <= error_ffmpeg + step + 1)
    # every level decodes and re-encodes to its own code (µ-law: 0x7F is -0, see below)
    codes = np.arange(256)
    back = encode[(decode * 32768).astype(np.int16).view(np.uint16)]
    keep = codes != 0x7F if name == "PCMU" else codes >= 0
    assert np.array_equal(back[keep], codes[keep])


def test_pcmu_round_trip_of_every_code_except_negative_zero() -> None:
    codes = np.arange(256, dtype=np.uint8)
    back = ULAW_ENCODE[(ULAW_DECODE[codes] * 32768).astype(np.int16).view(np.uint16)]
    assert np.array_equal(back[codes != 0x7F], codes[codes != 0x7F])  # 0x7F is -0 = 0xFF


def test_g711_codec_encodes_silence_as_the_rfc_3551_payload() -> None:
    assert G711Codec("PCMU").encode(np.zeros(160, np.float32)) == b"\xff" * 160
    assert G711Codec("PCMA").encode(np.zeros(160, np.float32)) == b"\xd5" * 160
    with pytest.raises(ValueError):
        G711Codec("PCMU").encode(np.zeros(10, np.float32))


@given(st.binary(max_size=400))
def test_g711_decodes_any_payload(payload: bytes) -> None:
    assert G711Codec("PCMA").decode(payload).shape == (len(payload),)


@pytest.mark.parametrize(
    ("encoding", "clock", "rate", "increment"),
    [("G722", 8000, 16000, 160), ("opus", 48000, 48000, 960)],
)
def test_g722_and_opus_round_trip_a_tone(
    encoding: str, clock: int, rate: int, increment: int
) -> None:
    codec = create_codec(encoding, clock)
    assert (codec.sample_rate, codec.timestamp_increment) == (rate, increment)
    n = codec.frame_samples
    t = np.arange(20 * n) / rate
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    decoded = np.concatenate(
        [codec.decode(codec.encode(tone[i * n : (i + 1) * n])) for i in range(20)]
    )
    spectrum = np.abs(np.fft.rfft(decoded[5 * n :]))
    peak = np.fft.rfftfreq(decoded[5 * n :].shape[0], 1 / rate)[spectrum.argmax()]
    assert abs(peak - 1000) < 30


def test_garbage_opus_is_a_codec_error_or_silence() -> None:
    codec = create_codec("opus", 48000)
    try:
        out = codec.decode(b"\xff\xff\xff")
    except RtpCodecError:
        return
    assert out.dtype == np.float32


def test_opus_encoder_state_copy_continues_the_other_stream_bit_for_bit() -> None:
    first, second = OpusCodec(), OpusCodec()
    t = np.arange(960) / 48000
    for i in range(8):
        frame = ((0.1 + 0.05 * i) * np.sin(2 * np.pi * 300 * (t + i * 0.02))).astype(np.float32)
        first.encode(frame)
        second.encode(np.zeros(960, np.float32))  # a different history
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert first.encode(tone) != second.encode(tone)
    second.copy_encoder_from(first)
    assert [first.encode(tone) for _ in range(5)] == [second.encode(tone) for _ in range(5)]
    second.reset_encoder()
    assert second.encode(tone) != first.encode(tone)


def test_opus_refuses_empty_and_bad_payloads_and_bad_frames() -> None:
    codec = OpusCodec()
    assert opus_version().startswith("libopus")
    with pytest.raises(RtpCodecError):
        codec.decode(b"")
    with pytest.raises(RtpCodecError):
        codec.decode(bytes([0x03]))  # code 3 without its frame count byte (RFC 6716 §3.2.5)
    with pytest.raises(ValueError):
        codec.encode(np.zeros(480, np.float32))


def test_unknown_codecs_are_refused() -> None:
    with pytest.raises(RtpCodecError):
        create_codec("speex", 16000)
    with pytest.raises(RtpCodecError):
        create_codec("PCMU", 16000)
