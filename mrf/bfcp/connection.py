"""One BFCP connection over a reliable transport, sans-I/O (RFC 8855 §6.1, §8).

Bytes and ``now`` go in (:meth:`BfcpConnection.receive_data`), events and
bytes come out (:meth:`next_event`, :meth:`data_to_send`); one timer
(:meth:`get_timer` / :meth:`handle_timer`) bounds client transactions.

Transactions (RFC 8855 §8): a client picks a non-zero Transaction ID not in
use and keeps the request until its answer arrives (no retransmission over
TCP/TLS; a configurable timeout ends it).  A server answers with the request's
Conference ID, Transaction ID and User ID, and sends its own notifications
(FloorRequestStatus, FloorStatus) with Transaction ID 0 and no answer.

Bad input never raises out of :meth:`receive_data`.  In the server role a
message that frames but does not parse or break the grammar is answered with
an Error carrying the right code (3 unknown primitive, 4 unknown mandatory
attribute with its details, 10 unable to parse, 12 unsupported version, 13
incorrect length) and an ERROR-INFO text, and the connection goes on; a stream
that cannot be framed any more is answered and failed (the adapter closes it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from mrf.bfcp.attribute import BfcpAttribute, BfcpErrorValue
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpErrorCode
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.errors import BfcpLocalError, BfcpRemoteError
from mrf.bfcp.events import (
    BfcpConnectionFailed,
    BfcpEvent,
    BfcpMessageRefused,
    BfcpNotificationReceived,
    BfcpRequestReceived,
    BfcpResponseReceived,
    BfcpTransactionTimedOut,
)
from mrf.bfcp.message import BfcpHeader, BfcpMessage, BfcpStreamParser, check_grammar

__all__ = ["REQUESTS", "BfcpConfig", "BfcpConnection", "BfcpRole", "error_message"]

# Primitives a client sends and a server answers (RFC 8855 §5.3, §8).
REQUESTS = frozenset(
    {
        P.FLOOR_REQUEST, P.FLOOR_RELEASE, P.FLOOR_REQUEST_QUERY, P.USER_QUERY,
        P.FLOOR_QUERY, P.CHAIR_ACTION, P.HELLO, P.GOODBYE,
    }
)  # fmt: skip
_ACKS = frozenset({P.FLOOR_REQUEST_STATUS_ACK, P.FLOOR_STATUS_ACK})  # unreliable transport only


class BfcpRole(StrEnum):
    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class BfcpConfig:
    """Caps and timers of one connection."""

    max_message_size: int = 65536
    transaction_timeout: float = 30.0  # seconds a client waits for an answer
    max_outstanding: int = 64  # client transactions in flight
    max_events: int = 1024  # undrained events before the connection fails


def error_message(
    header: BfcpHeader | BfcpMessage, code: int, info: str = "", details: bytes = b""
) -> BfcpMessage:
    """An Error answering ``header`` (RFC 8855 §5.3.13): same IDs, ERROR-CODE, ERROR-INFO."""
    attributes = [BfcpAttribute(T.ERROR_CODE, BfcpErrorValue(code, details))]
    if info:
        attributes.append(
            BfcpAttribute(T.ERROR_INFO, info.encode("utf-8")[:240].decode("utf-8", "ignore"))
        )
    return BfcpMessage(
        P.ERROR, header.conference_id, header.transaction_id, header.user_id, tuple(attributes)
    )


class BfcpConnection:
    """The sans-I/O state of one BFCP-over-TCP/TLS connection, client or server role."""

    def __init__(self, role: BfcpRole, config: BfcpConfig | None = None) -> None:
        self.role = role
        self.config = config or BfcpConfig()
        self.closed = False
        self._parser = BfcpStreamParser(self.config.max_message_size)
        self._events: deque[BfcpEvent] = deque()
        self._out = bytearray()
        self._outstanding: dict[int, tuple[BfcpMessage, float]] = {}
        self._next_tid = 1

    # -- input ------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes from the transport; events queue up, answers go to :meth:`data_to_send`."""
        if self.closed:
            return
        try:
            frames = self._parser.feed(data)
        except BfcpRemoteError as exc:
            frames = []
            self._fail_stream(exc)
        for frame in frames:
            self._receive_frame(frame)
        if len(self._events) > self.config.max_events:
            self._fail(BfcpErrorCode.GENERIC_ERROR, "too many undrained events")

    def _receive_frame(self, frame: bytes) -> None:
        header = BfcpHeader.parse(frame)
        try:
            message = BfcpMessage.parse(frame)
            if self.role is BfcpRole.SERVER:
                check_grammar(message)
        except BfcpRemoteError as exc:
            self._refuse(header, exc)
            return
        if self.role is BfcpRole.SERVER:
            self._receive_as_server(message)
        else:
            self._receive_as_client(message)

    def _receive_as_server(self, message: BfcpMessage) -> None:
        if message.primitive in _ACKS:
            return  # acknowledgements of notifications belong to UDP (RFC 8855 §8.3)
        if message.primitive not in REQUESTS or message.transaction_id == 0:
            self._refuse(
                message,
                BfcpRemoteError(
                    BfcpErrorCode.UNABLE_TO_PARSE_MESSAGE,
                    "not a request with a non-zero Transaction ID (RFC 8855 §8)",
                ),
            )
            return
        self._events.append(BfcpRequestReceived(message))

    def _receive_as_client(self, message: BfcpMessage) -> None:
        if message.transaction_id == 0:
            try:
                check_grammar(message)
            except BfcpRemoteError as exc:
                self._events.append(BfcpMessageRefused(int(exc.code), exc.reason, False))
                return
            self._events.append(BfcpNotificationReceived(message))
            return
        pending = self._outstanding.pop(message.transaction_id, None)
        if pending is None:
            reason = f"answer to unknown transaction {message.transaction_id}"
            self._events.append(BfcpMessageRefused(int(BfcpErrorCode.GENERIC_ERROR), reason, False))
            return
        self._events.append(BfcpResponseReceived(message, pending[0]))

    def _refuse(self, header: BfcpHeader | BfcpMessage, exc: BfcpRemoteError) -> None:
        answered = self.role is BfcpRole.SERVER and header.transaction_id != 0
        if answered:
            self.send(error_message(header, exc.code, exc.reason, exc.details))
        self._events.append(BfcpMessageRefused(int(exc.code), exc.reason, answered))

    def _fail_stream(self, exc: BfcpRemoteError) -> None:
        header = self._parser.failed_header
        if self.role is BfcpRole.SERVER and header is not None:
            self.send(error_message(header, exc.code, exc.reason))
        self._fail(exc.code, exc.reason)

    def _fail(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self._outstanding.clear()
            self._events.append(BfcpConnectionFailed(int(code), reason))

    # -- output -----------------------------------------------------------------

    def send(self, message: BfcpMessage) -> None:
        """Queue ``message`` as it is (server answers and notifications)."""
        self._out += bytes(message)

    def send_request(
        self,
        primitive: int,
        conference_id: int,
        user_id: int,
        attributes: tuple[BfcpAttribute, ...] = (),
        now: float = 0.0,
    ) -> BfcpMessage:
        """Client role: send a request with a fresh Transaction ID and track it."""
        if self.role is not BfcpRole.CLIENT or primitive not in REQUESTS:
            raise BfcpLocalError(f"cannot send primitive {primitive} as a {self.role} request")
        if self.closed:
            raise BfcpLocalError("connection closed")
        if len(self._outstanding) >= self.config.max_outstanding:
            raise BfcpLocalError("too many outstanding transactions")
        message = BfcpMessage(primitive, conference_id, self._new_tid(), user_id, attributes)
        self._outstanding[message.transaction_id] = (message, now + self.config.transaction_timeout)
        self.send(message)
        return message

    def _new_tid(self) -> int:
        while self._next_tid in self._outstanding:
            self._next_tid = self._next_tid % 0xFFFF + 1
        tid = self._next_tid
        self._next_tid = self._next_tid % 0xFFFF + 1
        return tid

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_event(self) -> BfcpEvent | None:
        return self._events.popleft() if self._events else None

    # -- timers -----------------------------------------------------------------

    def get_timer(self) -> float | None:
        return min((deadline for _, deadline in self._outstanding.values()), default=None)

    def handle_timer(self, now: float) -> None:
        for tid, (request, deadline) in list(self._outstanding.items()):
            if deadline <= now:
                del self._outstanding[tid]
                self._events.append(BfcpTransactionTimedOut(request))

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)
