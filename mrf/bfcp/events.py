"""Events of :class:`mrf.bfcp.connection.BfcpConnection` (past tense, frozen)."""

from __future__ import annotations

from dataclasses import dataclass

from mrf.bfcp.message import BfcpMessage

__all__ = [
    "BfcpConnectionFailed",
    "BfcpEvent",
    "BfcpMessageRefused",
    "BfcpNotificationReceived",
    "BfcpRequestReceived",
    "BfcpResponseReceived",
    "BfcpTransactionTimedOut",
]


@dataclass(frozen=True, slots=True)
class BfcpRequestReceived:
    """Server role: a well-formed request (any Error was already answered)."""

    message: BfcpMessage


@dataclass(frozen=True, slots=True)
class BfcpResponseReceived:
    """Client role: the answer to one of our requests (``message`` may be an Error)."""

    message: BfcpMessage
    request: BfcpMessage


@dataclass(frozen=True, slots=True)
class BfcpNotificationReceived:
    """Client role: a server-initiated message (Transaction ID 0, RFC 8855 §8)."""

    message: BfcpMessage


@dataclass(frozen=True, slots=True)
class BfcpMessageRefused:
    """Bad input: answered with Error ``code`` (server) or dropped (client)."""

    code: int
    reason: str
    answered: bool


@dataclass(frozen=True, slots=True)
class BfcpTransactionTimedOut:
    """Client role: no answer to ``request`` within the transaction timeout."""

    request: BfcpMessage


@dataclass(frozen=True, slots=True)
class BfcpConnectionFailed:
    """The byte stream is unusable (RFC 8855 §6.1): close the connection."""

    code: int
    reason: str


type BfcpEvent = (
    BfcpRequestReceived
    | BfcpResponseReceived
    | BfcpNotificationReceived
    | BfcpMessageRefused
    | BfcpTransactionTimedOut
    | BfcpConnectionFailed
)
