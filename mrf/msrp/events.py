"""Events of :class:`mrf.msrp.connection.MsrpConnection` (past tense, frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mrf.msrp.reassembly import MsrpReassembly
from mrf.msrp.uri import MsrpUri

__all__ = [
    "MsrpConnectionFailed",
    "MsrpDeliveryFailed",
    "MsrpEvent",
    "MsrpMessageAborted",
    "MsrpMessageDelivered",
    "MsrpMessageReceived",
    "MsrpNicknameRequested",
    "MsrpReportReceived",
    "MsrpSessionBound",
]


@dataclass(frozen=True, slots=True)
class MsrpSessionBound:
    """The first request for ``local`` arrived on this connection (§7.3)."""

    local: MsrpUri
    remote_path: tuple[MsrpUri, ...]


@dataclass(frozen=True, slots=True)
class MsrpMessageReceived:
    """A whole message; its bytes are in ``reassembly`` (the receiver closes it)."""

    local: MsrpUri
    remote_path: tuple[MsrpUri, ...]
    message_id: str
    content_type: str
    size: int
    reassembly: MsrpReassembly = field(repr=False)
    failure_report: str = "yes"


@dataclass(frozen=True, slots=True)
class MsrpMessageAborted:
    """The sender interrupted the message with ``#`` (or it was refused)."""

    local: MsrpUri
    message_id: str


@dataclass(frozen=True, slots=True)
class MsrpNicknameRequested:
    """RFC 7701 §7.1: answer with :meth:`MsrpConnection.respond`."""

    local: MsrpUri
    remote_path: tuple[MsrpUri, ...]
    transaction_id: str
    nickname: str


@dataclass(frozen=True, slots=True)
class MsrpReportReceived:
    local: MsrpUri
    message_id: str
    status: int
    byte_range: str | None


@dataclass(frozen=True, slots=True)
class MsrpMessageDelivered:
    """The last chunk of a message we sent got its 200."""

    local: MsrpUri
    message_id: str


@dataclass(frozen=True, slots=True)
class MsrpDeliveryFailed:
    """A chunk of a message we sent was refused, or no response came in time (408).

    ``context`` is what the sender passed to ``send_chunk`` (the relay's note of
    whom to report to), so that no table of sent messages has to be kept.
    """

    local: MsrpUri
    message_id: str
    status: int
    reason: str
    context: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class MsrpConnectionFailed:
    """Unrecoverable framing error: flush what is queued, then close."""

    status: int
    reason: str


type MsrpEvent = (
    MsrpSessionBound
    | MsrpMessageReceived
    | MsrpMessageAborted
    | MsrpNicknameRequested
    | MsrpReportReceived
    | MsrpMessageDelivered
    | MsrpDeliveryFailed
    | MsrpConnectionFailed
)
