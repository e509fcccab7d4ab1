"""MIKEY timestamps, the acceptance window and the replay cache (RFC 3830 §5.4, §6.6).

NTP timestamps count seconds since 1900-01-01 UTC (RFC 3830 §4.2.8).  32-bit
second values use the RFC 4330 §3 era rule (RFC 6043 §6.3: 1968-2104): values
with the most significant bit clear lie after 2036-02-07.

:class:`MikeyReplayCache` remembers every accepted message (by a digest of the
sender identity, CSB ID, timestamp and RAND) for as long as its timestamp is
inside the window, so a replay inside the window is refused and one outside
the window fails the timestamp check (RFC 3830 §5.4).  It takes ``now`` and
has a size cap: when full, it refuses new entries (fail closed) rather than
forgetting old ones.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from focus.mikey.buffer import MikeyRemoteError
from focus.mikey.constants import MikeyErrorCode, MikeyTsType

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
ERA_SPLIT = 1 << 31


def ntp_from_unix(now: float) -> int:
    """64-bit NTP timestamp (seconds << 32 | fraction) for a Unix time (era 0 or 1)."""
    seconds = int(now) + NTP_UNIX_OFFSET
    fraction = int((now - int(now)) * (1 << 32)) & 0xFFFFFFFF
    return (seconds & 0xFFFFFFFF) << 32 | fraction


def unix_from_ntp_seconds(seconds: int) -> float:
    """Unix time of 32-bit NTP seconds; MSB clear means era 1 (RFC 4330 §3)."""
    era = 0 if seconds & ERA_SPLIT else 1
    return seconds + era * (1 << 32) - NTP_UNIX_OFFSET


def unix_from_timestamp(ts_type: int, value: int) -> float | None:
    """Unix time of a T/TR value; ``None`` for COUNTER (not a clock)."""
    if ts_type in (MikeyTsType.NTP_UTC, MikeyTsType.NTP):
        return unix_from_ntp_seconds(value >> 32) + (value & 0xFFFFFFFF) / (1 << 32)
    if ts_type == MikeyTsType.NTP_UTC_32:
        return unix_from_ntp_seconds(value)
    return None


def timestamp_64(ts_type: int, value: int) -> int:
    """The 64-bit form used as IV/PRF input: 32-bit values get a zero fraction/padding."""
    if ts_type == MikeyTsType.NTP_UTC_32:
        return value << 32
    return value


def check_window(ts_type: int, value: int, now: float, window: float) -> None:
    """Refuse a clock timestamp further than ``window`` seconds from ``now`` (Invalid TS)."""
    when = unix_from_timestamp(ts_type, value)
    if when is None:
        raise MikeyRemoteError("COUNTER timestamps are not accepted", MikeyErrorCode.INVALID_TS)
    if abs(when - now) > window:
        raise MikeyRemoteError(
            f"timestamp {when - now:+.0f} s outside the {window:.0f} s window",
            MikeyErrorCode.INVALID_TS,
        )


class MikeyReplayCache:
    """Digests of accepted messages, each kept ``window`` seconds past its arrival."""

    def __init__(self, window: float = 300.0, max_entries: int = 100_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        while self._entries:
            key, expires = next(iter(self._entries.items()))
            if expires > now:
                break
            del self._entries[key]

    def check_and_add(self, now: float, *parts: bytes) -> None:
        """Record a message; raise ``MikeyRemoteError(INVALID_TS)`` if seen before."""
        self._expire(now)
        digest = hashlib.sha256(b"".join(len(p).to_bytes(4) + p for p in parts)).digest()
        if digest in self._entries:
            raise MikeyRemoteError("replayed MIKEY message", MikeyErrorCode.INVALID_TS)
        if len(self._entries) >= self.max_entries:
            raise MikeyRemoteError("replay cache full", MikeyErrorCode.UNSPECIFIED)
        self._entries[digest] = now + 2 * self.window
