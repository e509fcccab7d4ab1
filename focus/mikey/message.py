"""The MIKEY message: common header (HDR) and payload chain (RFC 3830 §6.1; RFC 6043 §6.1).

::

    version (8) | data type (8) | next payload (8) | V (1) PRF func (7)
    CSB ID (32) | #CS (8) | CS ID map type (8) | CS ID map info

CS ID map info: SRTP-ID (RFC 3830 §6.1.1, ``Policy_no | SSRC | ROC`` per CS),
Empty (RFC 4563, nothing) or GENERIC-ID (RFC 6043 §6.1.1)::

    CS ID (8) | Prot type (8) | S (1) #P (7) | Policy_no_1 .. Policy_no_#P (8 each)
    Session Data Length (16) | Session Data | SPI Length (8) | SPI

``MikeyMessage.parse(data)`` / ``bytes(message)`` round-trip byte for byte.
:meth:`MikeyMessage.signed_part` is the message without the MAC of its
final V payload, optionally without the TICKET's Initiator Data (the MAC
input of RFC 6043 §5.5 Table 5.2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from focus.mikey import tp as _tp  # registers TP and TICKET in PAYLOADS
from focus.mikey.buffer import (
    MikeyBuffer,
    MikeyLocalError,
    MikeyRemoteError,
    push_uint8,
    push_uint32,
    push_vector8,
    push_vector16,
    to_enum,
)
from focus.mikey.constants import VERSION, MikeyErrorCode, MikeyMapType, MikeyPrfFunc
from focus.mikey.payload import (
    MikeyPayload,
    MikeyVerification,
    first_type,
    pull_payloads,
    push_payloads,
)

MAX_MESSAGE_SIZE = 65536


@dataclass(frozen=True, slots=True)
class MikeySrtpIdEntry:
    """SRTP-ID map entry (RFC 3830 §6.1.1); its CS ID is its 1-based index."""

    policy_no: int
    ssrc: int
    roc: int = 0


@dataclass(frozen=True, slots=True)
class MikeyGenericIdEntry:
    """GENERIC-ID map entry (RFC 6043 §6.1.1)."""

    cs_id: int
    prot_type: int
    policy_nos: tuple[int, ...] = ()
    session_data: bytes = b""
    spi: bytes = b""
    s_flag: bool = False


type MikeyCsMap = tuple[MikeySrtpIdEntry, ...] | tuple[MikeyGenericIdEntry, ...]


@dataclass(frozen=True, slots=True)
class MikeyHeader:
    """HDR.  ``cs_count`` is only used with the Empty map (RFC 4563)."""

    data_type: int
    csb_id: int
    prf: int = MikeyPrfFunc.HMAC_SHA_256
    v_flag: bool = False
    map_type: int = MikeyMapType.GENERIC_ID
    cs_map: MikeyCsMap = ()
    cs_count: int = 0
    version: int = VERSION

    @property
    def number_of_cs(self) -> int:
        return self.cs_count if self.map_type == MikeyMapType.EMPTY else len(self.cs_map)

    def generic_entry(self, cs_id: int) -> MikeyGenericIdEntry | None:
        for entry in self.cs_map:
            if isinstance(entry, MikeyGenericIdEntry) and entry.cs_id == cs_id:
                return entry
        return None


def pull_header(buf: MikeyBuffer) -> tuple[MikeyHeader, int]:
    """HDR and the type of the first payload."""
    version = buf.pull_uint8()
    if version != VERSION:
        raise MikeyRemoteError(f"unsupported MIKEY version {version}")
    data_type, following, octet = buf.pull_uint8(), buf.pull_uint8(), buf.pull_uint8()
    csb_id, count = buf.pull_uint32(), buf.pull_uint8()
    map_type = to_enum(MikeyMapType, buf.pull_uint8(), "CS ID map type", MikeyErrorCode.INVALID_SP)
    cs_map: MikeyCsMap = ()
    if map_type == MikeyMapType.SRTP_ID:
        cs_map = tuple(
            MikeySrtpIdEntry(buf.pull_uint8(), buf.pull_uint32(), buf.pull_uint32())
            for _ in range(count)
        )
    elif map_type == MikeyMapType.GENERIC_ID:
        cs_map = tuple(_pull_generic(buf) for _ in range(count))
    header = MikeyHeader(
        data_type, csb_id, octet & 0x7F, bool(octet & 0x80), map_type, cs_map,
        count if map_type == MikeyMapType.EMPTY else 0, version,
    )  # fmt: skip
    return header, following


def _pull_generic(buf: MikeyBuffer) -> MikeyGenericIdEntry:
    cs_id, prot_type, octet = buf.pull_uint8(), buf.pull_uint8(), buf.pull_uint8()
    policy_nos = tuple(buf.pull_bytes(octet & 0x7F))
    session_data = buf.pull_vector16()
    spi = buf.pull_vector8()
    return MikeyGenericIdEntry(cs_id, prot_type, policy_nos, session_data, spi, bool(octet & 0x80))


def push_header(out: bytearray, header: MikeyHeader, following: int) -> None:
    if header.prf > 0x7F:
        raise MikeyLocalError("PRF func must fit in 7 bits")
    push_uint8(out, header.version)
    push_uint8(out, header.data_type)
    push_uint8(out, following)
    push_uint8(out, (0x80 if header.v_flag else 0) | header.prf)
    push_uint32(out, header.csb_id)
    push_uint8(out, header.number_of_cs)
    push_uint8(out, header.map_type)
    for entry in header.cs_map:
        if isinstance(entry, MikeySrtpIdEntry):
            if header.map_type != MikeyMapType.SRTP_ID:
                raise MikeyLocalError("SRTP-ID entries need the SRTP-ID map type")
            push_uint8(out, entry.policy_no)
            push_uint32(out, entry.ssrc)
            push_uint32(out, entry.roc)
        else:
            if header.map_type != MikeyMapType.GENERIC_ID:
                raise MikeyLocalError("GENERIC-ID entries need the GENERIC-ID map type")
            _push_generic(out, entry)


def _push_generic(out: bytearray, entry: MikeyGenericIdEntry) -> None:
    if len(entry.policy_nos) > 0x7F:
        raise MikeyLocalError("at most 127 policies per crypto session")
    push_uint8(out, entry.cs_id)
    push_uint8(out, entry.prot_type)
    push_uint8(out, (0x80 if entry.s_flag else 0) | len(entry.policy_nos))
    out += bytes(entry.policy_nos)
    push_vector16(out, entry.session_data)
    push_vector8(out, entry.spi)


@dataclass(frozen=True, slots=True)
class MikeyMessage:
    """A whole MIKEY message: HDR plus payloads in wire order."""

    header: MikeyHeader
    payloads: tuple[MikeyPayload, ...] = ()

    @classmethod
    def parse(cls, data: bytes, *, max_message_size: int = MAX_MESSAGE_SIZE) -> MikeyMessage:
        """Decode ``data``; raises :class:`MikeyRemoteError` for anything malformed."""
        if len(data) > max_message_size:
            raise MikeyRemoteError(f"MIKEY message over {max_message_size} bytes")
        buf = MikeyBuffer(data)
        header, following = pull_header(buf)
        payloads = pull_payloads(buf, following)
        if not buf.eof():
            raise MikeyRemoteError(f"{buf.remaining()} trailing bytes after the last payload")
        return cls(header, payloads)

    def encode(self, *, exclude_initiator_data: bool = False) -> bytes:
        out = bytearray()
        push_header(out, self.header, first_type(self.payloads))
        if not exclude_initiator_data:
            push_payloads(out, self.payloads)
            return bytes(out)
        for index, payload in enumerate(self.payloads):
            following = self.payloads[index + 1] if index + 1 < len(self.payloads) else None
            push_uint8(out, following.payload_type if following else 0)
            if isinstance(payload, _tp.MikeyTicket):
                payload.push_without_initiator_data(out)
            else:
                payload.push(out)
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.encode()

    @property
    def data_type(self) -> int:
        return self.header.data_type

    def find[P: MikeyPayload](self, cls: type[P], role: int | None = None) -> P | None:
        """The first payload of class ``cls`` (and ``role``, for IDR/RANDR/TR)."""
        return next(iter(self.find_all(cls, role)), None)

    def find_all[P: MikeyPayload](self, cls: type[P], role: int | None = None) -> list[P]:
        return [
            p
            for p in self.payloads
            if type(p) is cls and (role is None or getattr(p, "role", None) == role)
        ]

    def verification(self) -> MikeyVerification:
        """The final V payload (RFC 6043: V is last in every message that has one)."""
        if not self.payloads or not isinstance(self.payloads[-1], MikeyVerification):
            raise MikeyRemoteError(
                "message does not end with a V payload", MikeyErrorCode.INVALID_MAC
            )
        return self.payloads[-1]

    def signed_part(self, *, exclude_initiator_data: bool = False) -> bytes:
        """The encoded message without the V payload's MAC field (RFC 6043 §5.5)."""
        mac = self.verification().mac
        encoded = self.encode(exclude_initiator_data=exclude_initiator_data)
        return encoded[: len(encoded) - len(mac)]

    def with_mac(self, mac: bytes) -> MikeyMessage:
        """This message with the final V payload's MAC replaced."""
        last = self.verification()
        return replace(self, payloads=(*self.payloads[:-1], replace(last, mac=mac)))
