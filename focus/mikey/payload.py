"""MIKEY payloads (RFC 3830 §6, RFC 6043 §6): one dataclass per payload type.

Each payload class knows its ``payload_type`` and how to ``pull`` its body from
a :class:`MikeyBuffer` (the Next Payload octet already consumed by the chain)
and ``push`` it back; :data:`PAYLOADS` is the one dispatch table.  Field values
that only name something (roles, ID types, Prot types) are plain ``int`` so
unregistered values survive a round trip; values that fix a length (timestamp
type, MAC and hash algorithm, DH group) must be known.

Variable-length fields are byte aligned (RFC 6043 §6).  SIGN has no Next
Payload field and is always last (RFC 3830 §6.5).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Self

from focus.mikey.buffer import (
    MikeyBuffer,
    MikeyLocalError,
    MikeyRemoteError,
    push_uint,
    push_uint8,
    push_uint16,
    push_vector8,
    push_vector16,
    to_enum,
)
from focus.mikey.constants import (
    DH_LENGTHS,
    HASH_LENGTHS,
    MAC_LENGTHS,
    SALTED_KEY_TYPES,
    TS_LENGTHS,
    MikeyDhGroup,
    MikeyErrorCode,
    MikeyHashFunc,
    MikeyKeyValidity,
    MikeyMacAlg,
    MikeyPayloadType,
    MikeyTsType,
)
from focus.mikey.keydata import MikeyKeyValidityData, pull_kv, push_kv

MAX_PAYLOADS = 64  # cap on payloads per chain (house style: caps on every count)


class MikeyPayload:
    """Base class: ``pull(buf)`` parses the body, ``push(out)`` appends it."""

    payload_type: ClassVar[MikeyPayloadType]

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        raise NotImplementedError

    def push(self, out: bytearray) -> None:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class MikeyKemac(MikeyPayload):
    """KEMAC (RFC 3830 §6.2): encrypted key data sub-payloads and a MAC."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.KEMAC
    encr_alg: int
    encr_data: bytes
    mac_alg: int = MikeyMacAlg.NULL
    mac: bytes = b""

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        encr_alg = buf.pull_uint8()
        encr_data = buf.pull_vector16()
        mac_alg = to_enum(MikeyMacAlg, buf.pull_uint8(), "MAC alg", MikeyErrorCode.INVALID_HA)
        return cls(encr_alg, encr_data, mac_alg, buf.pull_bytes(MAC_LENGTHS[mac_alg]))

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.encr_alg)
        push_vector16(out, self.encr_data)
        push_uint8(out, self.mac_alg)
        out += _fixed(self.mac, MAC_LENGTHS[MikeyMacAlg(self.mac_alg)], "KEMAC MAC")


@dataclass(frozen=True, slots=True)
class MikeyPke(MikeyPayload):
    """PKE (RFC 3830 §6.3): envelope key encrypted with the responder's public key."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.PKE
    cache: int
    data: bytes

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        word = buf.pull_uint16()
        return cls(word >> 14, buf.pull_bytes(word & 0x3FFF))

    def push(self, out: bytearray) -> None:
        if self.cache > 3 or len(self.data) > 0x3FFF:
            raise MikeyLocalError("PKE cache or data length out of range")
        push_uint16(out, self.cache << 14 | len(self.data))
        out += self.data


@dataclass(frozen=True, slots=True)
class MikeyDh(MikeyPayload):
    """DH (RFC 3830 §6.4): DH value (length from the group) and key validity."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.DH
    group: int
    value: bytes
    kv: MikeyKeyValidityData = MikeyKeyValidityData()

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        group = to_enum(MikeyDhGroup, buf.pull_uint8(), "DH group", MikeyErrorCode.INVALID_DH)
        value = buf.pull_bytes(DH_LENGTHS[group])
        kv_type = buf.pull_uint8() & 0x0F
        return cls(group, value, pull_kv(buf, kv_type))

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.group)
        out += _fixed(self.value, DH_LENGTHS[MikeyDhGroup(self.group)], "DH value")
        push_uint8(out, self.kv.kv_type)
        push_kv(out, self.kv)


@dataclass(frozen=True, slots=True)
class MikeySign(MikeyPayload):
    """SIGN (RFC 3830 §6.5): ``S type (4) | Signature len (12)``; always last, no Next."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.SIGN
    sign_type: int
    signature: bytes

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        word = buf.pull_uint16()
        return cls(word >> 12, buf.pull_bytes(word & 0x0FFF))

    def push(self, out: bytearray) -> None:
        if self.sign_type > 15 or len(self.signature) > 0x0FFF:
            raise MikeyLocalError("SIGN type or length out of range")
        push_uint16(out, self.sign_type << 12 | len(self.signature))
        out += self.signature


@dataclass(frozen=True, slots=True)
class MikeyTimestamp(MikeyPayload):
    """T (RFC 3830 §6.6; RFC 6043 §6.3): NTP-UTC/NTP 64 bits, COUNTER/NTP-UTC-32 32 bits."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.T
    ts_type: int
    value: int

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        ts_type = _ts_type(buf.pull_uint8())
        return cls(ts_type, buf.pull_uint(TS_LENGTHS[ts_type]))

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.ts_type)
        push_uint(out, TS_LENGTHS[MikeyTsType(self.ts_type)], self.value)


@dataclass(frozen=True, slots=True)
class MikeyTimestampRole(MikeyPayload):
    """TR (RFC 6043 §6.4): a timestamp with a role (TRi, TRs, TRe, TRr)."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.TR
    role: int
    ts_type: int
    value: int

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        role = buf.pull_uint8()
        ts_type = _ts_type(buf.pull_uint8())
        return cls(role, ts_type, buf.pull_uint(TS_LENGTHS[ts_type]))

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.role)
        push_uint8(out, self.ts_type)
        push_uint(out, TS_LENGTHS[MikeyTsType(self.ts_type)], self.value)


@dataclass(frozen=True, slots=True)
class MikeyId(MikeyPayload):
    """ID (RFC 3830 §6.7): ``ID Type | ID len (16) | ID data``."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.ID
    id_type: int
    data: bytes

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        return cls(buf.pull_uint8(), buf.pull_vector16())

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.id_type)
        push_vector16(out, self.data)


@dataclass(frozen=True, slots=True)
class MikeyCert(MikeyId):
    """CERT (RFC 3830 §6.7): same layout as ID, DER certificate or URL."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.CERT


@dataclass(frozen=True, slots=True)
class MikeyIdRole(MikeyPayload):
    """IDR (RFC 6043 §6.6): ``ID Role | ID Type | ID len (16) | ID Data``."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.IDR
    role: int
    id_type: int
    data: bytes

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        return cls(buf.pull_uint8(), buf.pull_uint8(), buf.pull_vector16())

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.role)
        push_uint8(out, self.id_type)
        push_vector16(out, self.data)


@dataclass(frozen=True, slots=True)
class MikeyChash(MikeyPayload):
    """CHASH (RFC 3830 §6.8; RFC 6043 §6.7): hash length implied by the function."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.CHASH
    hash_func: int
    digest: bytes

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        func = to_enum(MikeyHashFunc, buf.pull_uint8(), "hash function", MikeyErrorCode.INVALID_HA)
        return cls(func, buf.pull_bytes(HASH_LENGTHS[func]))

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.hash_func)
        out += _fixed(self.digest, HASH_LENGTHS[MikeyHashFunc(self.hash_func)], "CHASH")


@dataclass(frozen=True, slots=True)
class MikeyVerification(MikeyPayload):
    """V (RFC 3830 §6.9): ``Auth alg | Ver data`` (length implied by the algorithm)."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.V
    mac_alg: int
    mac: bytes

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        alg = to_enum(MikeyMacAlg, buf.pull_uint8(), "MAC alg", MikeyErrorCode.INVALID_HA)
        return cls(alg, buf.pull_bytes(MAC_LENGTHS[alg]))

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.mac_alg)
        out += _fixed(self.mac, MAC_LENGTHS[MikeyMacAlg(self.mac_alg)], "V MAC")


@dataclass(frozen=True, slots=True)
class MikeySecurityPolicy(MikeyPayload):
    """SP (RFC 3830 §6.10): policy number, Prot type and ``Type | Length | Value`` params."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.SP
    policy_no: int
    prot_type: int
    params: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        policy_no, prot_type = buf.pull_uint8(), buf.pull_uint8()
        inner = MikeyBuffer(buf.pull_vector16())
        params = []
        while not inner.eof():
            params.append((inner.pull_uint8(), inner.pull_vector8()))
        return cls(policy_no, prot_type, tuple(params))

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.policy_no)
        push_uint8(out, self.prot_type)
        inner = bytearray()
        for param_type, value in self.params:
            push_uint8(inner, param_type)
            push_vector8(inner, value)
        push_vector16(out, bytes(inner))

    def param(self, param_type: int) -> bytes | None:
        """The value of the first parameter of ``param_type``, or ``None``."""
        return next((value for kind, value in self.params if kind == param_type), None)


@dataclass(frozen=True, slots=True)
class MikeyRand(MikeyPayload):
    """RAND (RFC 3830 §6.11): ``RAND len (8) | RAND``."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.RAND
    data: bytes

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        return cls(buf.pull_vector8())

    def push(self, out: bytearray) -> None:
        push_vector8(out, self.data)


@dataclass(frozen=True, slots=True)
class MikeyRandRole(MikeyPayload):
    """RANDR (RFC 6043 §6.8): ``RAND Role | RAND length (8) | RAND``."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.RANDR
    role: int
    data: bytes

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        return cls(buf.pull_uint8(), buf.pull_vector8())

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.role)
        push_vector8(out, self.data)


@dataclass(frozen=True, slots=True)
class MikeyErr(MikeyPayload):
    """ERR (RFC 3830 §6.12; RFC 6043 §6.9): ``Error no | Reserved (16)``."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.ERR
    code: int

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        code = buf.pull_uint8()
        buf.pull_uint16()  # reserved, ignored on receipt
        return cls(code)

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.code)
        push_uint16(out, 0)


@dataclass(frozen=True, slots=True)
class MikeyGeneralExtension(MikeyPayload):
    """General Extension (RFC 3830 §6.15): ``Type | Length (16) | Data``."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.GENERAL_EXT
    ext_type: int
    data: bytes

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        return cls(buf.pull_uint8(), buf.pull_vector16())

    def push(self, out: bytearray) -> None:
        push_uint8(out, self.ext_type)
        push_vector16(out, self.data)


def _fixed(value: bytes, length: int, what: str) -> bytes:
    if len(value) != length:
        raise MikeyLocalError(f"{what} must be {length} bytes, got {len(value)}")
    return value


def _ts_type(value: int) -> MikeyTsType:
    return to_enum(MikeyTsType, value, "TS type", MikeyErrorCode.INVALID_TS)


PAYLOADS: dict[MikeyPayloadType, type[MikeyPayload]] = {}


def register(cls: type[MikeyPayload]) -> type[MikeyPayload]:
    """Add a payload class to :data:`PAYLOADS` (the one dispatch table)."""
    PAYLOADS[cls.payload_type] = cls
    return cls


for _cls in (
    MikeyKemac, MikeyPke, MikeyDh, MikeySign, MikeyTimestamp, MikeyTimestampRole, MikeyId,
    MikeyCert, MikeyIdRole, MikeyChash, MikeyVerification, MikeySecurityPolicy, MikeyRand,
    MikeyRandRole, MikeyErr, MikeyGeneralExtension,
):  # fmt: skip
    register(_cls)


def pull_payloads(buf: MikeyBuffer, first: int) -> tuple[MikeyPayload, ...]:
    """Parse a payload chain whose first type is ``first`` up to Next Payload = 0."""
    payloads: list[MikeyPayload] = []
    kind = first
    while kind != MikeyPayloadType.LAST:
        if len(payloads) >= MAX_PAYLOADS:
            raise MikeyRemoteError(f"more than {MAX_PAYLOADS} payloads")
        cls = PAYLOADS.get(kind)  # type: ignore[call-overload]
        if cls is None:
            raise MikeyRemoteError(
                f"unsupported payload type {kind}", MikeyErrorCode.UNSUPPORTED_MESSAGE
            )
        if cls is MikeySign:
            payloads.append(cls.pull(buf))
            break
        kind = buf.pull_uint8()
        payloads.append(cls.pull(buf))
    return tuple(payloads)


def push_payloads(out: bytearray, payloads: Iterable[MikeyPayload]) -> None:
    """Append a chain: each payload's Next Payload is the type of the one after it."""
    items = list(payloads)
    for index, payload in enumerate(items):
        following = items[index + 1].payload_type if index + 1 < len(items) else 0
        if isinstance(payload, MikeySign):
            if following:
                raise MikeyLocalError("SIGN must be the last payload")
        else:
            push_uint8(out, following)
        payload.push(out)


def first_type(payloads: tuple[MikeyPayload, ...]) -> int:
    """Type of the first payload of a chain (0 for an empty chain)."""
    return int(payloads[0].payload_type) if payloads else 0


__all__ = [
    "MAX_PAYLOADS", "PAYLOADS", "MikeyCert", "MikeyChash", "MikeyDh", "MikeyErr",
    "MikeyGeneralExtension", "MikeyId", "MikeyIdRole", "MikeyKemac", "MikeyKeyValidity",
    "MikeyPayload", "MikeyPke", "MikeyRand", "MikeyRandRole", "MikeySecurityPolicy",
    "MikeySign", "MikeyTimestamp", "MikeyTimestampRole", "MikeyVerification",
    "first_type", "pull_payloads", "push_payloads", "register", "SALTED_KEY_TYPES",
]  # fmt: skip
