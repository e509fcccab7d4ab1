"""Opus (RFC 6716, RTP payload RFC 7587) through libopus itself, called with cffi.

Why not PyAV here: the mixer encodes and decodes one 20 ms frame at a time,
and PyAV's per-call objects (packet, frame, ndarray conversion) cost more than
libopus's own work at that size.  Calling ``opus_encode_float`` /
``opus_decode_float`` directly on preallocated buffers makes an encode about
half and a decode about a third of PyAV's cost.  Just as important for large
rooms: an encoder state can be *copied* (``OpusEncoder`` is one flat
allocation of ``opus_encoder_get_size()`` bytes with no pointers into itself),
so a listener that moves from the shared mix onto its own encoder continues
exactly the stream its decoder has seen (:meth:`OpusCodec.copy_encoder_from`).

The library is the system's ``libopus.so.0`` when there is one, else the copy
that the PyAV wheel bundles (``av.libs``; PyAV is a dependency through aiortc),
so a fresh ``pip install`` works without a Debian package.

Encoder settings: mono, application VoIP, 32 kbit/s VBR, complexity 5 (about
half the CPU of the default 10; speech at 32 kbit/s does not need more), 20 ms
frames.  RFC 7587 §3.4: we send mono in ``opus/48000/2``; decoding is to mono.
"""

from __future__ import annotations

import ctypes.util
import glob
import os
from typing import Any

import cffi  # type: ignore[import-untyped]  # no stubs; the API used is small
import numpy as np

from mrf.rtp.codec import RtpCodecError, Samples

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
MAX_FRAME_SAMPLES = 5760  # 120 ms, the longest Opus packet (RFC 6716 §3.2.5)
MAX_PACKET_SIZE = 1275  # RFC 6716 §3.2.1: the largest single frame; we send one per packet

# opus_defines.h
OPUS_APPLICATION_VOIP = 2048
OPUS_SET_BITRATE_REQUEST = 4002
OPUS_SET_VBR_REQUEST = 4006
OPUS_SET_COMPLEXITY_REQUEST = 4010
OPUS_SET_SIGNAL_REQUEST = 4024
OPUS_SIGNAL_VOICE = 3001
OPUS_RESET_STATE = 4028

_CDEF = """
typedef struct OpusEncoder OpusEncoder;
typedef struct OpusDecoder OpusDecoder;
int opus_encoder_get_size(int channels);
OpusEncoder *opus_encoder_create(int32_t Fs, int channels, int application, int *error);
int32_t opus_encode_float(OpusEncoder *st, const float *pcm, int frame_size,
                          unsigned char *data, int32_t max_data_bytes);
int opus_encoder_ctl(OpusEncoder *st, int request, ...);
void opus_encoder_destroy(OpusEncoder *st);
OpusDecoder *opus_decoder_create(int32_t Fs, int channels, int *error);
int opus_decode_float(OpusDecoder *st, const unsigned char *data, int32_t len,
                      float *pcm, int frame_size, int decode_fec);
int opus_decoder_ctl(OpusDecoder *st, int request, ...);
void opus_decoder_destroy(OpusDecoder *st);
const char *opus_strerror(int error);
const char *opus_get_version_string(void);
"""


class OpusError(RtpCodecError):
    """libopus could not be loaded, refused a setting, or a payload does not decode."""


def _library_path() -> str:
    found = ctypes.util.find_library("opus")
    if found:
        return found
    import av  # the wheel bundles libopus next to its modules

    bundled = sorted(
        glob.glob(os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs", "libopus*"))
    )
    if not bundled:
        raise OpusError("libopus not found (neither the system's nor PyAV's bundled copy)")
    return bundled[0]


_ffi = cffi.FFI()
_ffi.cdef(_CDEF)
_lib: Any = None


def _opus() -> Any:
    global _lib
    if _lib is None:
        _lib = _ffi.dlopen(_library_path())
    return _lib


def version() -> str:
    """The loaded libopus's version string (``libopus 1.5.2``)."""
    return str(_ffi.string(_opus().opus_get_version_string()).decode())


def _check(code: int, what: str) -> None:
    if code < 0:
        raise OpusError(f"{what}: {_ffi.string(_opus().opus_strerror(code)).decode()}")


class OpusCodec:
    """One Opus encoder and one decoder at 48 kHz mono; 20 ms frames.

    Satisfies :class:`mrf.rtp.codec.RtpCodec`.  `decode` raises `OpusError`
    (an `RtpCodecError`) for a payload libopus refuses.
    """

    name = "opus"
    sample_rate = clock_rate = SAMPLE_RATE
    stateless = False  # every payload depends on the encoder's history
    frame_samples = timestamp_increment = FRAME_SAMPLES

    def __init__(self, *, bitrate: int = 32000, complexity: int = 5) -> None:
        lib = _opus()
        error = _ffi.new("int *")
        self._encoder = _ffi.gc(
            lib.opus_encoder_create(SAMPLE_RATE, 1, OPUS_APPLICATION_VOIP, error),
            lib.opus_encoder_destroy,
        )
        _check(error[0], "opus_encoder_create")
        self._decoder = _ffi.gc(
            lib.opus_decoder_create(SAMPLE_RATE, 1, error), lib.opus_decoder_destroy
        )
        _check(error[0], "opus_decoder_create")
        for request, value in (
            (OPUS_SET_BITRATE_REQUEST, bitrate),
            (OPUS_SET_VBR_REQUEST, 1),
            (OPUS_SET_COMPLEXITY_REQUEST, complexity),
            (OPUS_SET_SIGNAL_REQUEST, OPUS_SIGNAL_VOICE),
        ):
            _check(
                lib.opus_encoder_ctl(self._encoder, request, _ffi.cast("int32_t", value)),
                f"opus_encoder_ctl({request})",
            )
        self._encoder_size = int(lib.opus_encoder_get_size(1))
        self._packet = _ffi.new("unsigned char[]", MAX_PACKET_SIZE)
        self._pcm = np.zeros(MAX_FRAME_SAMPLES, dtype=np.float32)
        self._pcm_pointer = _ffi.cast("float *", self._pcm.ctypes.data)

    def encode(self, frame: Samples) -> bytes:
        """One 20 ms frame (960 float samples in [-1, 1]) to one Opus packet."""
        if frame.shape != (FRAME_SAMPLES,) or frame.dtype != np.float32:
            raise ValueError(f"opus frames are {FRAME_SAMPLES} float32 samples")
        pcm = _ffi.from_buffer("float[]", np.ascontiguousarray(frame))
        size = _opus().opus_encode_float(
            self._encoder, pcm, FRAME_SAMPLES, self._packet, MAX_PACKET_SIZE
        )
        _check(size, "opus_encode_float")
        return bytes(_ffi.buffer(self._packet, size))

    def decode(self, payload: bytes) -> Samples:
        """One RTP payload to mono samples (a new array); an empty payload is refused."""
        if not payload:
            raise OpusError("empty opus payload")
        count = _opus().opus_decode_float(
            self._decoder, payload, len(payload), self._pcm_pointer, MAX_FRAME_SAMPLES, 0
        )
        _check(count, "opus payload does not decode")
        return self._pcm[:count].copy()

    def copy_encoder_from(self, other: OpusCodec) -> None:
        """Continue `other`'s encoded stream: our encoder becomes a copy of its state.

        The next `encode` gives the packet `other` would have produced, so a
        decoder that was fed `other`'s packets goes on without a glitch.
        """
        _ffi.memmove(
            _ffi.cast("char *", self._encoder),
            _ffi.cast("char *", other._encoder),
            self._encoder_size,
        )

    def reset_encoder(self) -> None:
        """Forget the encoder's history (OPUS_RESET_STATE)."""
        _check(_opus().opus_encoder_ctl(self._encoder, OPUS_RESET_STATE), "reset")


__all__ = ["FRAME_SAMPLES", "SAMPLE_RATE", "OpusCodec", "OpusError", "version"]
