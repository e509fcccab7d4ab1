"""Key data sub-payloads and key validity data (RFC 3830 §6.13, §6.14; RFC 6043 §6.2.1).

The decrypted ``Encr data`` of a KEMAC is a chain of key data sub-payloads::

    Next (8) | Type (4) | KV (4) | Key data len (16) | Key data
             | [Salt len (16) | Salt data]   (only the *+SALT types)
             | [KV data]                     (SPI: len (8) | SPI; Interval: VF, VT)

Next is 20 (another key data sub-payload) or 0 (last).  RFC 6043 §6.2.1: each
TEK/TGK/GTGK carries an SPI (KV = SPI).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from focus.mikey.buffer import (
    MikeyBuffer,
    MikeyLocalError,
    MikeyRemoteError,
    push_uint8,
    push_vector8,
    push_vector16,
    to_enum,
)
from focus.mikey.constants import (
    SALTED_KEY_TYPES,
    MikeyErrorCode,
    MikeyKeyType,
    MikeyKeyValidity,
    MikeyPayloadType,
)

MAX_KEYS = 32  # cap on key data sub-payloads in one KEMAC


@dataclass(frozen=True, slots=True)
class MikeyKeyValidityData:
    """KV data: nothing, an SPI/MKI, or a validity interval (RFC 3830 §6.14)."""

    kv_type: int = MikeyKeyValidity.NULL
    spi: bytes = b""
    valid_from: bytes = b""
    valid_to: bytes = b""


def pull_kv(buf: MikeyBuffer, kv_type: int) -> MikeyKeyValidityData:
    """KV data for ``kv_type`` (RFC 3830 §6.14)."""
    kind = to_enum(MikeyKeyValidity, kv_type, "KV type", MikeyErrorCode.UNSPECIFIED)
    if kind == MikeyKeyValidity.SPI:
        return MikeyKeyValidityData(kind, spi=buf.pull_vector8())
    if kind == MikeyKeyValidity.INTERVAL:
        valid_from = buf.pull_vector8()
        return MikeyKeyValidityData(kind, valid_from=valid_from, valid_to=buf.pull_vector8())
    return MikeyKeyValidityData()


def push_kv(out: bytearray, kv: MikeyKeyValidityData) -> None:
    if kv.kv_type == MikeyKeyValidity.SPI:
        push_vector8(out, kv.spi)
    elif kv.kv_type == MikeyKeyValidity.INTERVAL:
        push_vector8(out, kv.valid_from)
        push_vector8(out, kv.valid_to)
    elif kv.kv_type != MikeyKeyValidity.NULL:
        raise MikeyLocalError(f"unknown KV type {kv.kv_type}")


@dataclass(frozen=True, slots=True)
class MikeyKeyData:
    """One key data sub-payload: a TGK, TEK, GTGK or MPK with optional salt and KV."""

    key_type: int
    key: bytes
    salt: bytes | None = None
    kv: MikeyKeyValidityData = MikeyKeyValidityData()

    @property
    def spi(self) -> bytes | None:
        return self.kv.spi if self.kv.kv_type == MikeyKeyValidity.SPI else None

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> MikeyKeyData:
        octet = buf.pull_uint8()
        key_type = to_enum(MikeyKeyType, octet >> 4, "key type", MikeyErrorCode.UNSPECIFIED)
        key = buf.pull_vector16()
        salt = buf.pull_vector16() if key_type in SALTED_KEY_TYPES else None
        return cls(key_type, key, salt, pull_kv(buf, octet & 0x0F))

    def push(self, out: bytearray) -> None:
        salted = self.key_type in SALTED_KEY_TYPES
        if salted != (self.salt is not None):
            raise MikeyLocalError("a salt goes with exactly the *+SALT key types")
        push_uint8(out, (self.key_type & 0x0F) << 4 | (self.kv.kv_type & 0x0F))
        push_vector16(out, self.key)
        if self.salt is not None:
            push_vector16(out, self.salt)
        push_kv(out, self.kv)


def pull_key_data_list(data: bytes) -> tuple[MikeyKeyData, ...]:
    """Parse decrypted KEMAC ``Encr data``; empty data means no keys."""
    buf = MikeyBuffer(data)
    keys: list[MikeyKeyData] = []
    more = not buf.eof()
    while more:
        if len(keys) >= MAX_KEYS:
            raise MikeyRemoteError(f"more than {MAX_KEYS} key data sub-payloads")
        following = buf.pull_uint8()
        if following not in (MikeyPayloadType.LAST, MikeyPayloadType.KEY_DATA):
            raise MikeyRemoteError(f"key data sub-payload followed by payload type {following}")
        keys.append(MikeyKeyData.pull(buf))
        more = following == MikeyPayloadType.KEY_DATA
    if not buf.eof():
        raise MikeyRemoteError("trailing bytes after the last key data sub-payload")
    return tuple(keys)


def push_key_data_list(keys: Iterable[MikeyKeyData]) -> bytes:
    """Encode key data sub-payloads as KEMAC ``Encr data`` (before encryption)."""
    items = list(keys)
    out = bytearray()
    for index, key in enumerate(items):
        push_uint8(out, MikeyPayloadType.KEY_DATA if index + 1 < len(items) else 0)
        key.push(out)
    return bytes(out)
