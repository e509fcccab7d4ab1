"""Voice activity read from a payload without decoding it (sans-I/O).

A large room has a few speakers and many listeners whose packets carry
silence.  Decoding every listener's Opus packet only to find it silent would
cost more than everything else the mixer does, so the mixer first asks this
module whether a payload may hold speech, and decodes (and measures) only
those that may:

* **Opus** (RFC 6716): the TOC byte (§3.1) says the mode and frame layout
  (§3.2).  A frame of 0 or 1 byte is a DTX/concealment frame (§3.2.1): silent.
  In SILK-only and hybrid modes every frame begins with the SILK layer's
  header bits (§4.2.3), whose first symbols are the voice-activity flags of
  its 20 ms SILK frames, each coded with probability 1/2 -- so with the range
  coder's start state (§4.1.1) a flag is a plain bit at the top of the frame's
  first byte.  The sender's own encoder has run a VAD and says so; we read
  it.  CELT-only frames carry no such flag: *unknown*, the mixer decodes.
* **G.711** (PCMU/PCMA): a 256-entry table marks the codes louder than
  `LOUD_LEVEL`; ``bytes.translate`` + ``count`` (C loops, no NumPy call)
  count them, and a frame with at least `LOUD_FRACTION` of its samples
  above that level may hold speech.
* anything else: unknown.

A hint is never trusted as speech: a participant hinted *voice* or *unknown*
is decoded and its measured level decides (:mod:`mrf.rtp.speakers`).  The hint
only spares the work for payloads that cannot be speech.
"""

from __future__ import annotations

from enum import IntEnum

from mrf.rtp.codec import ALAW_DECODE, ULAW_DECODE


class RtpActivity(IntEnum):
    """What a payload says about its audio before decoding."""

    SILENT = 0
    UNKNOWN = 1
    VOICE = 2


LOUD_LEVEL = 10 ** (-46 / 20)  # a sample above -46 dBFS (about 160 of 32768)
LOUD_FRACTION = 1 / 16

# RFC 6716 §3.1 Table 2: config -> frame duration in ms (for the SILK frame count)
_OPUS_DURATION_MS = (
    (10, 20, 40, 60) * 3  # SILK-only NB, MB, WB (configs 0-11)
    + (10, 20) * 2  # hybrid SWB, FB (12-15)
    + (2.5, 5, 10, 20) * 4  # CELT-only (16-31)
)


# per SILK/hybrid config: the first `silk frames per Opus frame` bits (mono VAD flags)
_VAD_MASKS = tuple((0xFF00 >> max(1, int(ms) // 20)) & 0xFF for ms in _OPUS_DURATION_MS[:16])


def _loud_table(decode: object) -> bytes:
    return bytes(1 if abs(float(level)) > LOUD_LEVEL else 0 for level in decode)  # type: ignore[attr-defined]


_G711_LOUD = {"PCMU": _loud_table(ULAW_DECODE), "PCMA": _loud_table(ALAW_DECODE)}


def g711_activity(payload: bytes, name: str) -> RtpActivity:
    """SILENT unless enough samples of the G.711 frame are above `LOUD_LEVEL`."""
    loud = payload.translate(_G711_LOUD[name]).count(1)
    return RtpActivity.VOICE if loud >= max(1, len(payload) * LOUD_FRACTION) else RtpActivity.SILENT


def _frame_length(payload: bytes, at: int) -> tuple[int, int]:
    """RFC 6716 §3.2.1 frame length at `at`: (length, octets used); (-1, 0) if cut short."""
    if at >= len(payload):
        return -1, 0
    first = payload[at]
    if first < 252:
        return first, 1
    if at + 1 >= len(payload):
        return -1, 0
    return first + 4 * payload[at + 1], 2


def opus_frames(payload: bytes) -> list[bytes] | None:
    """The compressed frames of an Opus packet (RFC 6716 §3.2), None if malformed."""
    if not payload:
        return None
    code = payload[0] & 0x03
    if code == 0:
        return [payload[1:]]
    if code == 1:
        if (len(payload) - 1) % 2:
            return None
        half = (len(payload) - 1) // 2
        return [payload[1 : 1 + half], payload[1 + half :]]
    if code == 2:
        length, used = _frame_length(payload, 1)
        start = 1 + used
        if length < 0 or start + length > len(payload):
            return None
        return [payload[start : start + length], payload[start + length :]]
    return _code3_frames(payload)


def _code3_frames(payload: bytes) -> list[bytes] | None:
    """RFC 6716 §3.2.5: frame count byte, optional padding, CBR or VBR lengths."""
    if len(payload) < 2:
        return None
    count_byte = payload[1]
    vbr, padded, count = count_byte & 0x80, count_byte & 0x40, count_byte & 0x3F
    if count == 0:
        return None
    at, padding = 2, 0
    while padded:
        if at >= len(payload):
            return None
        value = payload[at]
        at += 1
        padding += 254 if value == 255 else value
        padded = value == 255
    end = len(payload) - padding
    if vbr:
        lengths = []
        for _ in range(count - 1):
            length, used = _frame_length(payload, at)
            if length < 0:
                return None
            lengths.append(length)
            at += used
        lengths.append(end - at - sum(lengths))
    else:
        if (end - at) % count:
            return None
        lengths = [(end - at) // count] * count
    if at > end or min(lengths) < 0:
        return None
    frames = []
    for length in lengths:
        frames.append(payload[at : at + length])
        at += length
    return frames


def opus_activity(payload: bytes) -> RtpActivity:
    """VOICE/SILENT from the SILK VAD flags, UNKNOWN for CELT-only or malformed packets."""
    if len(payload) > 1 and payload[0] & 0x03 == 0:  # one frame: the usual 20 ms packet
        config = payload[0] >> 3
        if len(payload) == 2:
            return RtpActivity.SILENT  # a 1-byte frame: DTX (§3.2.1)
        if config >= 16:
            return RtpActivity.UNKNOWN
        mask = _VAD_MASKS[config]
        return RtpActivity.VOICE if payload[1] & mask else RtpActivity.SILENT
    frames = opus_frames(payload)
    if frames is None:
        return RtpActivity.UNKNOWN  # the decoder will refuse it and count the error
    config = payload[0] >> 3
    if all(len(frame) <= 1 for frame in frames):
        return RtpActivity.SILENT  # DTX / lost frames (§3.2.1)
    if config >= 16:
        return RtpActivity.UNKNOWN
    mask = _VAD_MASKS[config]
    for frame in frames:
        if len(frame) > 1 and frame[0] & mask:
            return RtpActivity.VOICE
    return RtpActivity.SILENT


def payload_activity(codec_name: str, payload: bytes) -> RtpActivity:
    """The hint for one payload of `codec_name` (``RtpCodec.name``)."""
    if codec_name == "opus":
        return opus_activity(payload)
    if codec_name in _G711_LOUD:
        return g711_activity(payload, codec_name)
    return RtpActivity.UNKNOWN


__all__ = [
    "LOUD_FRACTION",
    "LOUD_LEVEL",
    "RtpActivity",
    "g711_activity",
    "opus_activity",
    "opus_frames",
    "payload_activity",
]
