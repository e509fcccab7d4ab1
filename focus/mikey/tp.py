"""TP and TICKET payloads (RFC 6043 §6.10)::

     0: Next Payload (8) | Ticket Type (16) | Subtype (8)
     4: Version (8) | PRF Func (7) | D E F G H I J K L M N O (12) | Res (5)
     8: TP Data length (16) | TP Data
        --- TICKET only ---
        Ticket Data length (16) | Ticket Data
        Initiator Data length (16) | Initiator Data (may be empty)

TP Data and Initiator Data are payload chains whose first octet is the type
of the first payload (``First Payload, [IDRkms], [IDRi], [TRs], [TRe], [TRr],
[KEMAC], {IDRapp}, (IDRr)`` for TP Data).  Ticket Data is opaque to everyone
but the KMS (the MIKEY Base Ticket is in :mod:`focus.mikey.ticket`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Self

from focus.mikey.buffer import (
    MikeyBuffer,
    MikeyLocalError,
    MikeyRemoteError,
    push_uint8,
    push_uint16,
    push_uint32,
    push_vector16,
)
from focus.mikey.constants import MikeyPayloadType, MikeyTicketFlag
from focus.mikey.payload import MikeyPayload, pull_payloads, push_payloads, register


def pull_chain(data: bytes) -> tuple[MikeyPayload, ...]:
    """A ``First Payload (8)`` octet and its payload chain; empty data is no payloads."""
    if not data:
        return ()
    buf = MikeyBuffer(data)
    payloads = pull_payloads(buf, buf.pull_uint8())
    if not buf.eof():
        raise MikeyRemoteError("trailing bytes after a payload chain")
    return payloads


def push_chain(payloads: tuple[MikeyPayload, ...]) -> bytes:
    if not payloads:
        return b""
    out = bytearray()
    push_uint8(out, payloads[0].payload_type)
    push_payloads(out, payloads)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class MikeyTicketPolicy(MikeyPayload):
    """TP: the Initiator's wanted ticket policy (REQUEST_INIT)."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.TP
    ticket_type: int
    subtype: int = 1
    version: int = 1
    prf: int = 1
    flags: int = 0
    payloads: tuple[MikeyPayload, ...] = ()

    def has(self, flag: MikeyTicketFlag) -> bool:
        return bool(self.flags & flag)

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        ticket_type, subtype, version = buf.pull_uint16(), buf.pull_uint8(), buf.pull_uint8()
        word = buf.pull_uint(3)
        prf, flags = word >> 17, (word >> 5) & 0x0FFF
        return cls(ticket_type, subtype, version, prf, flags, pull_chain(buf.pull_vector16()))

    def push(self, out: bytearray) -> None:
        if self.prf > 0x7F or self.flags > 0x0FFF:
            raise MikeyLocalError("TP PRF func or flags out of range")
        push_uint16(out, self.ticket_type)
        push_uint8(out, self.subtype)
        push_uint32(out, self.version << 24 | self.prf << 17 | self.flags << 5)
        push_vector16(out, push_chain(self.payloads))

    def find[P: MikeyPayload](self, cls: type[P], role: int | None = None) -> P | None:
        """The first TP Data payload of class ``cls`` (and ``role`` when given)."""
        return next(iter(self.find_all(cls, role)), None)

    def find_all[P: MikeyPayload](self, cls: type[P], role: int | None = None) -> list[P]:
        return [
            p
            for p in self.payloads
            if type(p) is cls and (role is None or getattr(p, "role", None) == role)
        ]


@dataclass(frozen=True, slots=True)
class MikeyTicket(MikeyTicketPolicy):
    """TICKET: the TP fields plus the opaque Ticket Data and the Initiator Data."""

    payload_type: ClassVar[MikeyPayloadType] = MikeyPayloadType.TICKET
    ticket_data: bytes = b""
    initiator_data: bytes = b""

    @classmethod
    def pull(cls, buf: MikeyBuffer) -> Self:
        policy = MikeyTicketPolicy.pull(buf)
        ticket_data, initiator_data = buf.pull_vector16(), buf.pull_vector16()
        return cls(
            policy.ticket_type, policy.subtype, policy.version, policy.prf, policy.flags,
            policy.payloads, ticket_data, initiator_data,
        )  # fmt: skip

    def push(self, out: bytearray) -> None:
        self.push_without_initiator_data(out)
        push_vector16(out, self.initiator_data)

    def push_without_initiator_data(self, out: bytearray) -> None:
        """Everything but Initiator Data length and Initiator Data (RFC 6043 §5.5)."""
        MikeyTicketPolicy.push(self, out)
        push_vector16(out, self.ticket_data)

    def policy(self) -> MikeyTicketPolicy:
        """The TP part of this ticket."""
        return MikeyTicketPolicy(
            self.ticket_type, self.subtype, self.version, self.prf, self.flags, self.payloads
        )

    def with_ticket_data(self, ticket_data: bytes) -> MikeyTicket:
        return replace(self, ticket_data=ticket_data)


register(MikeyTicketPolicy)
register(MikeyTicket)
