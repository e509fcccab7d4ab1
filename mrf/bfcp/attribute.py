"""BFCP attributes (RFC 8855 §5.2): one table, one decoder, one encoder.

Every attribute is ``Type (7) | M (1) | Length (8) | contents`` padded with
zeros to a 32-bit boundary (RFC 8855 §5.2).  ``Length`` counts the header and
the contents but not the padding; for a grouped attribute it counts its
header, its fixed 16-bit ID and the whole (padded) length of the attributes it
groups.  :data:`ATTRIBUTES` declares each known type once: its wire format and,
for grouped attributes, the ABNF of RFC 8855 §5.2.14–§5.2.18 (which members
may appear, which must).  Unknown types are kept as raw bytes; when their M
bit is set the message records them so that the receiver answers Error 4
(RFC 8855 §5.2, §13.8).

Values by format:

* ``U16`` (BENEFICIARY-ID, FLOOR-ID, FLOOR-REQUEST-ID): ``int``
* ``PRIORITY``: ``int`` 0..7 (the 3-bit Prio field; >4 means Highest)
* ``STATUS`` (REQUEST-STATUS): :class:`BfcpStatus`
* ``ERROR`` (ERROR-CODE): :class:`BfcpErrorValue`
* ``TEXT`` (ERROR-INFO, STATUS-INFO, ...): ``str`` (UTF-8 on the wire)
* ``OCTETS`` (SUPPORTED-ATTRIBUTES / -PRIMITIVES): ``tuple[int, ...]``
* ``GROUPED``: :class:`BfcpGroup`
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum, auto

from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpErrorCode
from mrf.bfcp.errors import BfcpLocalError, BfcpRemoteError

__all__ = [
    "ATTRIBUTES",
    "MAX_ATTRIBUTES",
    "MAX_DEPTH",
    "BfcpAttribute",
    "BfcpAttributeFormat",
    "BfcpErrorValue",
    "BfcpGroup",
    "BfcpStatus",
    "pull_attributes",
    "push_attributes",
    "push_group",
]

MAX_DEPTH = 4  # grouped attributes nest at most this deep (FRI > BENEFICIARY-INFORMATION > ...)
MAX_ATTRIBUTES = 1024  # attributes per message, all levels together


class BfcpAttributeFormat(Enum):
    U16 = auto()
    PRIORITY = auto()
    STATUS = auto()
    ERROR = auto()
    TEXT = auto()
    OCTETS = auto()
    GROUPED = auto()


@dataclass(frozen=True, slots=True)
class _Spec:
    format: BfcpAttributeFormat
    members: frozenset[int] = frozenset()  # grouped: known types allowed inside
    required: frozenset[int] = frozenset()  # grouped: types that must be inside


F = BfcpAttributeFormat
_INFO = frozenset({T.USER_DISPLAY_NAME, T.USER_URI})
_STATUS = frozenset({T.REQUEST_STATUS, T.STATUS_INFO})

# The one table (RFC 8855 §5.2, Table 2 and the grouped ABNFs of §5.2.14–§5.2.18).
ATTRIBUTES: dict[int, _Spec] = {
    T.BENEFICIARY_ID: _Spec(F.U16),
    T.FLOOR_ID: _Spec(F.U16),
    T.FLOOR_REQUEST_ID: _Spec(F.U16),
    T.PRIORITY: _Spec(F.PRIORITY),
    T.REQUEST_STATUS: _Spec(F.STATUS),
    T.ERROR_CODE: _Spec(F.ERROR),
    T.ERROR_INFO: _Spec(F.TEXT),
    T.PARTICIPANT_PROVIDED_INFO: _Spec(F.TEXT),
    T.STATUS_INFO: _Spec(F.TEXT),
    T.SUPPORTED_ATTRIBUTES: _Spec(F.OCTETS),
    T.SUPPORTED_PRIMITIVES: _Spec(F.OCTETS),
    T.USER_DISPLAY_NAME: _Spec(F.TEXT),
    T.USER_URI: _Spec(F.TEXT),
    T.BENEFICIARY_INFORMATION: _Spec(F.GROUPED, _INFO),
    T.FLOOR_REQUEST_INFORMATION: _Spec(
        F.GROUPED,
        frozenset(
            {
                T.OVERALL_REQUEST_STATUS,
                T.FLOOR_REQUEST_STATUS,
                T.BENEFICIARY_INFORMATION,
                T.REQUESTED_BY_INFORMATION,
                T.PRIORITY,
                T.PARTICIPANT_PROVIDED_INFO,
            }
        ),
        frozenset({T.FLOOR_REQUEST_STATUS}),
    ),
    T.REQUESTED_BY_INFORMATION: _Spec(F.GROUPED, _INFO),
    T.FLOOR_REQUEST_STATUS: _Spec(F.GROUPED, _STATUS),
    T.OVERALL_REQUEST_STATUS: _Spec(F.GROUPED, _STATUS),
}


@dataclass(frozen=True, slots=True)
class BfcpStatus:
    """REQUEST-STATUS contents (RFC 8855 §5.2.5)."""

    status: int
    queue_position: int = 0


@dataclass(frozen=True, slots=True)
class BfcpErrorValue:
    """ERROR-CODE contents (RFC 8855 §5.2.6): code and error-specific details."""

    code: int
    details: bytes = b""


@dataclass(frozen=True, slots=True)
class BfcpGroup:
    """A grouped attribute: its 16-bit header ID and the attributes inside."""

    id: int
    attributes: tuple[BfcpAttribute, ...] = ()

    def first(self, type_: int) -> BfcpAttribute | None:
        return next((a for a in self.attributes if a.type == type_), None)

    def all(self, type_: int) -> list[BfcpAttribute]:
        return [a for a in self.attributes if a.type == type_]


type BfcpValue = int | str | bytes | tuple[int, ...] | BfcpStatus | BfcpErrorValue | BfcpGroup


@dataclass(frozen=True, slots=True)
class BfcpAttribute:
    """One attribute; ``type`` is an int so that unknown types survive a round trip."""

    type: int
    value: BfcpValue
    mandatory: bool = field(default=True)

    @property
    def known(self) -> bool:
        return self.type in ATTRIBUTES


def _bad(reason: str, code: BfcpErrorCode = BfcpErrorCode.UNABLE_TO_PARSE_MESSAGE) -> Exception:
    return BfcpRemoteError(code, reason)


@dataclass(slots=True)
class _Reader:
    data: bytes
    count: int = 0
    unknown_mandatory: list[int] = field(default_factory=list)


def pull_attributes(
    data: bytes, *, unknown_mandatory: list[int] | None = None
) -> tuple[BfcpAttribute, ...]:
    """Decode a message payload; raises :class:`BfcpRemoteError` (10 or 13)."""
    reader = _Reader(bytes(data))
    result = _pull_list(reader, 0, len(reader.data), 0)
    if unknown_mandatory is not None:
        unknown_mandatory.extend(reader.unknown_mandatory)
    return result


def _pull_list(reader: _Reader, start: int, end: int, depth: int) -> tuple[BfcpAttribute, ...]:
    out: list[BfcpAttribute] = []
    position = start
    while position < end:
        attribute, position = _pull_one(reader, position, end, depth)
        out.append(attribute)
    return tuple(out)


def _pull_one(reader: _Reader, position: int, end: int, depth: int) -> tuple[BfcpAttribute, int]:
    reader.count += 1
    if reader.count > MAX_ATTRIBUTES:
        raise _bad(f"more than {MAX_ATTRIBUTES} attributes")
    if end - position < 2:
        raise _bad("truncated attribute header", BfcpErrorCode.INCORRECT_MESSAGE_LENGTH)
    first, length = reader.data[position], reader.data[position + 1]
    type_, mandatory = first >> 1, bool(first & 1)
    if length < 2:
        raise _bad(f"attribute {type_} length {length} below 2")
    padded = (length + 3) & ~3
    if position + padded > end:
        raise _bad(
            f"attribute {type_} overruns its message", BfcpErrorCode.INCORRECT_MESSAGE_LENGTH
        )
    body = reader.data[position + 2 : position + length]
    spec = ATTRIBUTES.get(type_)
    if spec is None:
        if mandatory:
            reader.unknown_mandatory.append(type_)
        return BfcpAttribute(type_, bytes(body), mandatory), position + padded
    if spec.format is F.GROUPED:
        value: BfcpValue = _pull_group(reader, type_, spec, position, length, depth)
    else:
        value = _decode(type_, spec.format, body)
    return BfcpAttribute(type_, value, mandatory), position + padded


def _pull_group(
    reader: _Reader, type_: int, spec: _Spec, position: int, length: int, depth: int
) -> BfcpGroup:
    if length < 4 or length % 4:
        raise _bad(f"grouped attribute {type_} length {length} is not 4 + a multiple of 4")
    if depth >= MAX_DEPTH:
        raise _bad(f"grouped attributes nested deeper than {MAX_DEPTH}")
    (group_id,) = struct.unpack_from("!H", reader.data, position + 2)
    members = _pull_list(reader, position + 4, position + length, depth + 1)
    types = {m.type for m in members}
    missing = spec.required - types
    if missing:
        raise _bad(f"grouped attribute {type_} lacks {sorted(missing)} (RFC 8855 §5.2)")
    stray = {m.type for m in members if m.known and m.type not in spec.members}
    if stray:
        raise _bad(f"grouped attribute {type_} may not contain {sorted(stray)}")
    return BfcpGroup(group_id, members)


def _decode(type_: int, format_: BfcpAttributeFormat, body: bytes) -> BfcpValue:
    if format_ in (F.U16, F.PRIORITY, F.STATUS) and len(body) != 2:
        raise _bad(f"attribute {type_} must have length 4, not {len(body) + 2}")
    if format_ is F.U16:
        return int(struct.unpack("!H", body)[0])
    if format_ is F.PRIORITY:
        return body[0] >> 5
    if format_ is F.STATUS:
        return BfcpStatus(body[0], body[1])
    if format_ is F.ERROR:
        if not body:
            raise _bad("ERROR-CODE without a code")
        return BfcpErrorValue(body[0], bytes(body[1:]))
    if format_ is F.OCTETS:
        shift = 1 if type_ == T.SUPPORTED_ATTRIBUTES else 0
        return tuple(octet >> shift for octet in body)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"attribute {type_} is not UTF-8") from exc


def push_attributes(attributes: tuple[BfcpAttribute, ...] | list[BfcpAttribute]) -> bytes:
    """Encode attributes, each padded to 32 bits; raises :class:`BfcpLocalError` on misuse."""
    return b"".join(_push_one(a, 0) for a in attributes)


def _push_one(attribute: BfcpAttribute, depth: int) -> bytes:
    type_ = int(attribute.type)
    if not 0 < type_ < 128:
        raise BfcpLocalError(f"attribute type {type_} out of range 1..127")
    spec = ATTRIBUTES.get(type_)
    if spec is not None and spec.format is F.GROUPED:
        if depth >= MAX_DEPTH or not isinstance(attribute.value, BfcpGroup):
            raise BfcpLocalError(f"attribute {type_} needs a BfcpGroup (depth < {MAX_DEPTH})")
        group = attribute.value
        inner = b"".join(_push_one(a, depth + 1) for a in group.attributes)
        return push_group(type_, group.id, inner, attribute.mandatory)
    if spec is not None:
        body = _encode(type_, spec.format, attribute.value)
    elif isinstance(attribute.value, bytes):
        body = attribute.value
    else:
        raise BfcpLocalError(f"unknown attribute {type_} needs raw bytes")
    length = 2 + len(body)
    if length > 255:
        raise BfcpLocalError(f"attribute {type_} too long ({length} > 255 octets)")
    header = bytes([(type_ << 1) | int(attribute.mandatory), length])
    return header + body + bytes(-length % 4)


def push_group(type_: int, group_id: int, members: bytes, mandatory: bool = True) -> bytes:
    """A grouped attribute around already encoded ``members`` (RFC 8855 §5.2).

    Lets a producer cache the encoding of members that do not change (the
    user information of a floor request) and re-encode only the others.
    """
    length = 4 + len(members)
    if length > 255:
        raise BfcpLocalError(f"grouped attribute {type_} too long ({length} > 255 octets)")
    header = bytes([(type_ << 1) | int(mandatory), length])
    return header + struct.pack("!H", _u16(group_id)) + members


def _u16(value: object) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise BfcpLocalError(f"{value!r} is not an unsigned 16-bit value")
    return value


def _encode(type_: int, format_: BfcpAttributeFormat, value: BfcpValue) -> bytes:
    if format_ is F.U16:
        return struct.pack("!H", _u16(value))
    if format_ is F.PRIORITY:
        if not isinstance(value, int) or not 0 <= value <= 7:
            raise BfcpLocalError(f"priority {value!r} out of range 0..7")
        return bytes([value << 5, 0])
    if format_ is F.STATUS and isinstance(value, BfcpStatus):
        return bytes([value.status & 0xFF, value.queue_position & 0xFF])
    if format_ is F.ERROR and isinstance(value, BfcpErrorValue):
        return bytes([value.code & 0xFF]) + value.details
    if format_ is F.OCTETS and isinstance(value, tuple):
        shift = 1 if type_ == T.SUPPORTED_ATTRIBUTES else 0
        return bytes((v << shift) & 0xFF for v in value)
    if format_ is F.TEXT and isinstance(value, str):
        return value.encode("utf-8")
    raise BfcpLocalError(f"attribute {type_}: value {value!r} does not fit {format_.name}")
