"""BFCP messages (RFC 8855 §5.1, §5.3): the common header, the grammar table, stream framing.

The common header is 12 octets in network byte order (RFC 8855 §5.1)::

    Ver(3) R(1) F(1) Res(3) | Primitive(8) | Payload Length(16, 4-octet units)
    Conference ID(32) | Transaction ID(16) | User ID(16)
    [Fragment Offset(16) | Fragment Length(16)]      only when F=1

Over TCP/TLS the version is 1 (RFC 4582 and RFC 8855 agree) and R/F are
unused; version 2 belongs to UDP/DTLS.  This project serves BFCP over TLS only,
so fragments (F=1) are refused with Error 10 instead of being reassembled.

:data:`MESSAGES` is the grammar of every primitive (RFC 8855 §5.3.1–§5.3.18):
the attributes each message must carry, and the known attributes it may.
Unknown attributes are extensions: allowed when M=0, reported as "unknown
mandatory" (Error 4) when M=1.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from mrf.bfcp.attribute import BfcpAttribute, pull_attributes, push_attributes
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpErrorCode
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.errors import BfcpLocalError, BfcpRemoteError

__all__ = [
    "HEADER_SIZE",
    "MESSAGES",
    "BfcpHeader",
    "BfcpMessage",
    "BfcpStreamParser",
    "check_grammar",
]

HEADER_SIZE = 12
MAX_PAYLOAD_SIZE = 0xFFFF * 4  # the 16-bit Payload Length in 4-octet units
RELIABLE_VERSION = 1  # RFC 8855 §5.1 (TCP/TLS); 2 is UDP/DTLS
SUPPORTED_VERSIONS = frozenset({1, 2})


@dataclass(frozen=True, slots=True)
class _Grammar:
    required: frozenset[int] = frozenset()  # each at least once
    allowed: frozenset[int] = frozenset()  # known attribute types allowed at top level


def _g(required: set[int], optional: set[int] | None = None) -> _Grammar:
    return _Grammar(frozenset(required), frozenset(required | (optional or set())))


# RFC 8855 §5.3 ABNFs, one row per primitive.
MESSAGES: dict[int, _Grammar] = {
    P.FLOOR_REQUEST: _g({T.FLOOR_ID}, {T.BENEFICIARY_ID, T.PARTICIPANT_PROVIDED_INFO, T.PRIORITY}),
    P.FLOOR_RELEASE: _g({T.FLOOR_REQUEST_ID}),
    P.FLOOR_REQUEST_QUERY: _g({T.FLOOR_REQUEST_ID}),
    P.FLOOR_REQUEST_STATUS: _g({T.FLOOR_REQUEST_INFORMATION}),
    P.USER_QUERY: _g(set(), {T.BENEFICIARY_ID}),
    P.USER_STATUS: _g(set(), {T.BENEFICIARY_INFORMATION, T.FLOOR_REQUEST_INFORMATION}),
    P.FLOOR_QUERY: _g(set(), {T.FLOOR_ID}),
    P.FLOOR_STATUS: _g(set(), {T.FLOOR_ID, T.FLOOR_REQUEST_INFORMATION}),
    P.CHAIR_ACTION: _g({T.FLOOR_REQUEST_INFORMATION}),
    P.CHAIR_ACTION_ACK: _g(set()),
    P.HELLO: _g(set()),
    P.HELLO_ACK: _g({T.SUPPORTED_PRIMITIVES, T.SUPPORTED_ATTRIBUTES}),
    P.ERROR: _g({T.ERROR_CODE}, {T.ERROR_INFO}),
    P.FLOOR_REQUEST_STATUS_ACK: _g(set()),
    P.FLOOR_STATUS_ACK: _g(set()),
    P.GOODBYE: _g(set()),
    P.GOODBYE_ACK: _g(set()),
}


@dataclass(frozen=True, slots=True)
class BfcpHeader:
    """The common header (RFC 8855 §5.1); ``payload_length`` in octets."""

    version: int
    responder: bool
    fragmented: bool
    primitive: int
    payload_length: int
    conference_id: int
    transaction_id: int
    user_id: int

    @classmethod
    def parse(cls, data: bytes) -> BfcpHeader:
        if len(data) < HEADER_SIZE:
            raise BfcpRemoteError(
                BfcpErrorCode.INCORRECT_MESSAGE_LENGTH, "shorter than the 12-octet header"
            )
        first, primitive, words, conference, transaction, user = struct.unpack_from("!BBHIHH", data)
        return cls(
            first >> 5, bool(first & 0x10), bool(first & 0x08), primitive, words * 4,
            conference, transaction, user,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class BfcpMessage:
    """One BFCP message; ``primitive`` stays an int so unknown primitives can be answered."""

    primitive: int
    conference_id: int
    transaction_id: int
    user_id: int
    attributes: tuple[BfcpAttribute, ...] = ()
    version: int = RELIABLE_VERSION
    responder: bool = False
    unknown_mandatory: tuple[int, ...] = field(default=(), compare=False)
    # ``attributes`` already encoded, when the producer has them (a notification
    # fanned out to many users is encoded once); must equal push_attributes(attributes).
    payload: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, data: bytes) -> BfcpMessage:
        """Decode exactly one message; raises :class:`BfcpRemoteError` (10, 12 or 13)."""
        header = BfcpHeader.parse(data)
        if header.version not in SUPPORTED_VERSIONS:
            raise BfcpRemoteError(BfcpErrorCode.UNSUPPORTED_VERSION, f"version {header.version}")
        if HEADER_SIZE + header.payload_length != len(data):
            raise BfcpRemoteError(
                BfcpErrorCode.INCORRECT_MESSAGE_LENGTH,
                f"Payload Length {header.payload_length} but {len(data) - HEADER_SIZE} octets",
            )
        if header.fragmented:
            raise BfcpRemoteError(
                BfcpErrorCode.UNABLE_TO_PARSE_MESSAGE, "fragments are not used over TCP/TLS"
            )
        unknown: list[int] = []
        attributes = pull_attributes(data[HEADER_SIZE:], unknown_mandatory=unknown)
        return cls(
            header.primitive, header.conference_id, header.transaction_id, header.user_id,
            attributes, header.version, header.responder, tuple(unknown),
        )  # fmt: skip

    def __bytes__(self) -> bytes:
        payload = self.payload if self.payload is not None else push_attributes(self.attributes)
        if len(payload) > MAX_PAYLOAD_SIZE:
            raise BfcpLocalError(f"payload of {len(payload)} octets does not fit")
        if not 0 < self.primitive < 256 or self.version not in SUPPORTED_VERSIONS:
            raise BfcpLocalError(f"primitive {self.primitive} / version {self.version}")
        first = (self.version << 5) | (0x10 if self.responder else 0)
        header = struct.pack(
            "!BBHIHH", first, self.primitive, len(payload) // 4,
            self.conference_id, self.transaction_id, self.user_id,
        )  # fmt: skip
        return header + payload

    @property
    def known(self) -> bool:
        return self.primitive in MESSAGES

    def first(self, type_: int) -> BfcpAttribute | None:
        return next((a for a in self.attributes if a.type == type_), None)

    def all(self, type_: int) -> list[BfcpAttribute]:
        return [a for a in self.attributes if a.type == type_]

    def values(self, type_: int) -> list[object]:
        return [a.value for a in self.attributes if a.type == type_]

    def ints(self, type_: int) -> list[int]:
        """The values of the 16-bit and PRIORITY attributes of ``type_``."""
        return [a.value for a in self.attributes if a.type == type_ and isinstance(a.value, int)]

    def text(self, type_: int) -> str | None:
        """The first text value of ``type_`` (ERROR-INFO, PARTICIPANT-PROVIDED-INFO...)."""
        return next(
            (a.value for a in self.attributes if a.type == type_ and isinstance(a.value, str)), None
        )


def check_grammar(message: BfcpMessage) -> None:
    """Check ``message`` against :data:`MESSAGES`; raises :class:`BfcpRemoteError`.

    Error 3 for an unknown primitive, Error 4 (details: the unknown types with
    their M bit, RFC 8855 §5.2.6.1) for unknown mandatory attributes, Error 10
    for a missing required or misplaced known attribute.
    """
    grammar = MESSAGES.get(message.primitive)
    if grammar is None:
        raise BfcpRemoteError(BfcpErrorCode.UNKNOWN_PRIMITIVE, f"primitive {message.primitive}")
    if message.unknown_mandatory:
        details = bytes((t << 1) | 1 for t in message.unknown_mandatory[:255])
        raise BfcpRemoteError(
            BfcpErrorCode.UNKNOWN_MANDATORY_ATTRIBUTE,
            f"unknown mandatory attributes {list(message.unknown_mandatory)}",
            details=details,
        )
    types = {a.type for a in message.attributes}
    missing = grammar.required - types
    stray = {a.type for a in message.attributes if a.known} - grammar.allowed
    if missing or stray:
        name = P(message.primitive).name
        raise BfcpRemoteError(
            BfcpErrorCode.UNABLE_TO_PARSE_MESSAGE,
            f"{name}: missing {sorted(missing)}, not allowed {sorted(stray)} (RFC 8855 §5.3)",
        )


class BfcpStreamParser:
    """Frames messages on a TCP/TLS byte stream by the header's Payload Length.

    ``feed(data)`` returns the complete raw messages (those before a broken
    header too: the error is then raised by the next call); a header that cannot
    belong to BFCP (version not 1, or a message above ``max_message_size``)
    raises a *fatal* :class:`BfcpRemoteError`: the stream cannot be
    resynchronised and the connection must be closed (RFC 8855 §6.1).
    """

    def __init__(self, max_message_size: int = 65536) -> None:
        if max_message_size < HEADER_SIZE:
            raise BfcpLocalError("max_message_size below the header size")
        self.max_message_size = max_message_size
        self._buffer = bytearray()
        self.failed: BfcpRemoteError | None = None
        self.failed_header: BfcpHeader | None = None  # the header that broke the stream

    def feed(self, data: bytes) -> list[bytes]:
        if self.failed is not None:
            raise self.failed
        self._buffer += data
        out: list[bytes] = []
        while len(self._buffer) >= HEADER_SIZE:
            header = BfcpHeader.parse(bytes(self._buffer[:HEADER_SIZE]))
            try:
                self._check(header)
            except BfcpRemoteError:
                if out:
                    return out  # the complete messages first; the error on the next feed
                raise
            size = HEADER_SIZE + header.payload_length
            if len(self._buffer) < size:
                break
            out.append(bytes(self._buffer[:size]))
            del self._buffer[:size]
        return out

    def _check(self, header: BfcpHeader) -> None:
        error: BfcpRemoteError | None = None
        if header.version != RELIABLE_VERSION:
            error = BfcpRemoteError(
                BfcpErrorCode.UNSUPPORTED_VERSION,
                f"version {header.version} on a reliable transport (RFC 8855 §5.1)",
                fatal=True,
            )
        elif HEADER_SIZE + header.payload_length > self.max_message_size:
            error = BfcpRemoteError(
                BfcpErrorCode.INCORRECT_MESSAGE_LENGTH,
                f"message of {HEADER_SIZE + header.payload_length} octets exceeds the cap",
                fatal=True,
            )
        if error is not None:
            self.failed, self.failed_header = error, header
            self._buffer.clear()
            raise error

    @property
    def buffered(self) -> int:
        return len(self._buffer)
