"""Errors and the byte buffer behind every MIKEY codec (aioquic ``tls.py`` style).

Error tree (house style §4)::

    MikeyError
     ├── MikeyLocalError    our misuse (bad argument, value out of range)
     └── MikeyRemoteError   the peer's fault; carries the MIKEY ERR code to
                            answer with (RFC 3830 §6.12, RFC 6043 §6.9)

``MikeyBuffer`` pulls big-endian integers and byte strings and raises
``MikeyRemoteError`` on truncation; ``push_*`` append to a ``bytearray`` and
raise ``MikeyLocalError`` when a value does not fit its field.
"""

from __future__ import annotations

from focus.mikey.constants import MikeyErrorCode


class MikeyError(Exception):
    """Base of every MIKEY error."""


class MikeyLocalError(MikeyError):
    """We misused the codec (a value does not fit, a key is missing)."""


class MikeyRemoteError(MikeyError):
    """The peer sent something we refuse; ``code`` is the ERR payload to answer with."""

    def __init__(self, reason: str, code: MikeyErrorCode = MikeyErrorCode.UNSPECIFIED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class MikeyBuffer:
    """A read cursor over ``data``; every pull is bounds-checked."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    @property
    def position(self) -> int:
        return self._pos

    @property
    def data(self) -> bytes:
        return self._data

    def eof(self) -> bool:
        return self._pos >= len(self._data)

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def pull_bytes(self, length: int) -> bytes:
        if length < 0 or self._pos + length > len(self._data):
            raise MikeyRemoteError(
                f"truncated MIKEY data: need {length} bytes at offset {self._pos}, "
                f"have {len(self._data) - self._pos}"
            )
        value = self._data[self._pos : self._pos + length]
        self._pos += length
        return value

    def pull_uint8(self) -> int:
        return self.pull_bytes(1)[0]

    def pull_uint16(self) -> int:
        return int.from_bytes(self.pull_bytes(2))

    def pull_uint32(self) -> int:
        return int.from_bytes(self.pull_bytes(4))

    def pull_uint(self, length: int) -> int:
        return int.from_bytes(self.pull_bytes(length))

    def pull_vector8(self) -> bytes:
        """An 8-bit length followed by that many bytes."""
        return self.pull_bytes(self.pull_uint8())

    def pull_vector16(self) -> bytes:
        """A 16-bit length followed by that many bytes."""
        return self.pull_bytes(self.pull_uint16())


def push_uint(out: bytearray, length: int, value: int) -> None:
    """Append ``value`` as a big-endian unsigned integer of ``length`` bytes."""
    if not 0 <= value < 1 << (8 * length):
        raise MikeyLocalError(f"value {value} does not fit in {length} byte(s)")
    out += value.to_bytes(length)


def push_uint8(out: bytearray, value: int) -> None:
    push_uint(out, 1, value)


def push_uint16(out: bytearray, value: int) -> None:
    push_uint(out, 2, value)


def push_uint32(out: bytearray, value: int) -> None:
    push_uint(out, 4, value)


def push_vector8(out: bytearray, value: bytes) -> None:
    push_uint8(out, len(value))
    out += value


def push_vector16(out: bytearray, value: bytes) -> None:
    push_uint16(out, len(value))
    out += value


def to_enum[E](enum: type[E], value: int, what: str, code: MikeyErrorCode) -> E:
    """``enum(value)`` or a ``MikeyRemoteError`` naming the unknown value."""
    try:
        return enum(value)  # type: ignore[call-arg]
    except ValueError:
        raise MikeyRemoteError(f"unknown {what} {value}", code) from None
