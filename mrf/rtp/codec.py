"""Audio codecs of the mixer: G.711 in NumPy, G.722 and Opus through PyAV.

Every codec turns one RTP payload into float32 samples in [-1, 1] at its
sampling rate (`decode`) and one frame of such samples back into a payload
(`encode`).  The mixer works on 20 ms frames at the codec's own rate.

* PCMU / PCMA (ITU-T G.711, RFC 3551 §4.5.14): 8 kHz, one octet per sample.
  Python 3.13 has no `audioop`, so both laws are table-driven: a 256-entry
  decode table and a 65536-entry encode table indexed by the 16-bit sample,
  built once at import from the reference algorithm (Sun's g711.c, the
  ITU-T G.191 STL formulation).
* G722 (RFC 3551 §4.5.2): 16 kHz sampling, but the RTP clock rate is 8000
  "for historical reasons", so a 20 ms frame is 320 samples and advances
  the RTP timestamp by 160.  Encoded by FFmpeg's `g722` codec.
* opus (RFC 7587): always `opus/48000/2` in SDP, RTP clock 48 kHz; we encode
  mono (RFC 7587 §3.4 allows it) and decode to mono.  libopus called directly
  (:mod:`mrf.rtp.opus`), which also lets the mixer copy an encoder's state.

`create_codec(encoding, clock_rate)` builds a fresh codec (decoders and
encoders are stateful, so every participant direction has its own).
"""

from __future__ import annotations

import fractions
from typing import Protocol, cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.codeccontext import AudioCodecContext

type Samples = npt.NDArray[np.float32]

FRAME_DURATION = 0.020  # seconds; the mixer's tick (RFC 3551 §4.5: 20 ms default ptime)
MAX_DECODED_SAMPLES = 48000 * 120 // 1000  # Opus' longest packet (RFC 6716 §3.2.5)


class RtpCodecError(Exception):
    """A payload could not be decoded (the peer's fault) or the codec is unknown."""


class RtpCodec(Protocol):
    """One direction-independent codec instance (encode and decode state)."""

    name: str
    sample_rate: int  # samples per second of `decode`/`encode` arrays
    clock_rate: int  # RTP timestamp units per second (RFC 3550 §5.1)

    @property
    def frame_samples(self) -> int: ...
    @property
    def timestamp_increment(self) -> int: ...
    def decode(self, payload: bytes) -> Samples: ...
    def encode(self, frame: Samples) -> bytes: ...


def _ulaw_decode(code: int) -> int:
    """µ-law octet to a 16-bit sample. # ITU-T G.711 Table 2a"""
    code = ~code & 0xFF
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -sample if code & 0x80 else sample


def _ulaw_encode(sample: int) -> int:
    """16-bit sample to µ-law (bias 0x84, clip 32635). # ITU-T G.711 Table 2a"""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sign else sample, 32635) + 0x84
    exponent = max(magnitude.bit_length() - 8, 0)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | exponent << 4 | mantissa) & 0xFF


def _alaw_decode(code: int) -> int:
    """A-law octet to a 16-bit sample. # ITU-T G.711 Table 1a"""
    code ^= 0x55
    value = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        value += 8
    else:
        value = (value + 0x108) << (segment - 1)
    return value if code & 0x80 else -value


def _alaw_encode(sample: int) -> int:
    """16-bit sample to A-law (13-bit magnitude segments). # ITU-T G.711 Table 1a"""
    value = sample >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask, value = 0x55, -value - 1
    segment = max(value.bit_length() - 5, 0)
    if segment >= 8:
        return 0x7F ^ mask
    low = (value >> 1) if segment < 2 else (value >> segment)
    return ((segment << 4) | (low & 0x0F)) ^ mask


def _tables(
    decode: object, encode: object
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    assert callable(decode) and callable(encode)
    dec = np.array([decode(code) for code in range(256)], dtype=np.float32) / 32768.0
    samples = np.arange(65536, dtype=np.int64)
    signed = np.where(samples >= 32768, samples - 65536, samples)  # index = uint16 view
    enc = np.array([encode(int(s)) for s in signed], dtype=np.uint8)
    return dec, enc


ULAW_DECODE, ULAW_ENCODE = _tables(_ulaw_decode, _ulaw_encode)
ALAW_DECODE, ALAW_ENCODE = _tables(_alaw_decode, _alaw_encode)


class G711Codec:
    """PCMU or PCMA with NumPy lookup tables; encode allocates no per-sample objects."""

    sample_rate = clock_rate = 8000
    stateless = True  # a frame's payload depends on that frame only: the mixer may share it

    def __init__(self, name: str) -> None:
        upper = name.upper()
        if upper not in ("PCMU", "PCMA"):
            raise RtpCodecError(f"not a G.711 codec: {name!r}")
        self.name = upper
        self._decode, self._encode = (
            (ULAW_DECODE, ULAW_ENCODE) if upper == "PCMU" else (ALAW_DECODE, ALAW_ENCODE)
        )
        n = self.frame_samples
        self._scaled = np.empty(n, dtype=np.float32)
        self._pcm = np.empty(n, dtype=np.int16)
        self._octets = np.empty(n, dtype=np.uint8)

    @property
    def frame_samples(self) -> int:
        return round(self.sample_rate * FRAME_DURATION)

    @property
    def timestamp_increment(self) -> int:
        return self.frame_samples

    def decode(self, payload: bytes) -> Samples:
        if len(payload) > MAX_DECODED_SAMPLES:
            raise RtpCodecError(f"{self.name} payload of {len(payload)} octets is too long")
        return self._decode[np.frombuffer(payload, dtype=np.uint8)]

    def encode(self, frame: Samples) -> bytes:
        if frame.shape != self._scaled.shape:
            raise ValueError(f"{self.name} frames are {self._scaled.shape[0]} samples")
        np.multiply(frame, 32767.0, out=self._scaled)
        np.copyto(self._pcm, self._scaled, casting="unsafe")
        np.take(self._encode, self._pcm.view(np.uint16), out=self._octets)
        return self._octets.tobytes()


class PyAvCodec:
    """A PyAV (FFmpeg) encoder/decoder pair for one codec at one sampling rate."""

    def __init__(
        self, name: str, encoder: str, decoder: str, sample_rate: int, clock_rate: int
    ) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self.clock_rate = clock_rate
        self._encoder = cast(AudioCodecContext, av.CodecContext.create(encoder, "w"))
        self._encoder.sample_rate = sample_rate
        self._encoder.layout = "mono"
        self._encoder.format = "s16"
        self._encoder.time_base = fractions.Fraction(1, sample_rate)
        self._decoder = cast(AudioCodecContext, av.CodecContext.create(decoder, "r"))
        self._decoder.sample_rate = sample_rate
        self._decoder.layout = "mono"
        self._pcm = np.empty((1, self.frame_samples), dtype=np.int16)
        self._pts = 0

    @property
    def frame_samples(self) -> int:
        return round(self.sample_rate * FRAME_DURATION)

    @property
    def timestamp_increment(self) -> int:
        return round(self.clock_rate * FRAME_DURATION)

    def decode(self, payload: bytes) -> Samples:
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except (av.FFmpegError, ValueError) as exc:
            raise RtpCodecError(f"{self.name} payload does not decode: {exc}") from exc
        parts = [_mono_float(frame.to_ndarray()) for frame in frames]
        if not parts:
            return np.zeros(0, dtype=np.float32)
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if out.shape[0] > MAX_DECODED_SAMPLES * self.sample_rate // 48000:
            raise RtpCodecError(f"{self.name} payload decodes to too many samples")
        return out

    def encode(self, frame: Samples) -> bytes:
        np.multiply(frame, 32767.0, out=self._pcm[0], casting="unsafe")
        audio = av.AudioFrame.from_ndarray(self._pcm, format="s16", layout="mono")
        audio.sample_rate = self.sample_rate
        audio.pts = self._pts
        self._pts += self.frame_samples
        packets = self._encoder.encode(audio)
        return b"".join(bytes(p) for p in packets)


def _mono_float(array: npt.NDArray[np.generic]) -> Samples:
    """PyAV's planar/packed s16/flt output as one float32 channel."""
    if array.dtype == np.int16:
        data = array.astype(np.float32) / 32768.0
    else:
        data = array.astype(np.float32, copy=False)
    return data[0] if data.ndim == 2 and data.shape[0] == 1 else data.reshape(-1)


#: (encoding lower-case, RTP clock rate) -> what `create_codec` builds
SUPPORTED_CODECS = {
    ("pcmu", 8000): "PCMU",
    ("pcma", 8000): "PCMA",
    ("g722", 8000): "G722",
    ("opus", 48000): "opus",
}


def create_codec(encoding: str, clock_rate: int) -> RtpCodec:
    """A fresh codec for an rtpmap encoding name and clock rate (RFC 4855 §3)."""
    name = SUPPORTED_CODECS.get((encoding.lower(), clock_rate))
    if name in ("PCMU", "PCMA"):
        return G711Codec(name)
    if name == "G722":
        return PyAvCodec("G722", "g722", "g722", 16000, 8000)
    if name == "opus":
        from mrf.rtp.opus import OpusCodec  # libopus itself: see mrf.rtp.opus

        return OpusCodec()
    raise RtpCodecError(f"unsupported codec {encoding}/{clock_rate}")


__all__ = [
    "FRAME_DURATION",
    "SUPPORTED_CODECS",
    "G711Codec",
    "PyAvCodec",
    "RtpCodec",
    "RtpCodecError",
    "Samples",
    "create_codec",
]
