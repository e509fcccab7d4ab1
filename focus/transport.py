"""asyncio adapters for SIP over UDP, TCP and TLS (RFC 3261 §18).

This module holds the socket side: :class:`SipDatagramProtocol` (UDP),
:class:`SipStreamConnection` (one TCP or TLS connection, framed by
:class:`focus.sip.message.SipStreamParser`) and :class:`SipConnectionTable`
(connection reuse keyed by remote address, with RFC 5923-style aliases).
The :class:`~focus.endpoint.SipEndpoint` that drives the transaction layer
lives in :mod:`focus.endpoint` and is re-exported here as
``focus.transport.SipEndpoint``.

Caps: a connection buffers at most ``max_message_size`` unparsed bytes (the
stream parser's cap), at most ``max_pending_size`` bytes while connecting, and is
closed after ``idle_timeout`` seconds without traffic; the table holds at most
``max_connections`` connections and refuses further incoming ones, and at most
``max_per_source`` (default :data:`MAX_CONNECTIONS_PER_SOURCE`) from one source
address, so one host cannot take the whole table.  A TLS handshake that has not
finished after :data:`TLS_HANDSHAKE_TIMEOUT` seconds is aborted (slow or
half-open handshakes do not hold a slot).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from typing import TYPE_CHECKING, Any, Protocol

from focus.sip.message import (
    SipError,
    SipHeaders,
    SipRemoteError,
    SipRequest,
    SipStreamParser,
)
from focus.sip.transaction import SipAddress, SipMessage

if TYPE_CHECKING:
    from focus.endpoint import SipEndpoint

logger = logging.getLogger(__name__)

MAX_DATAGRAMS_PER_EVENT = 16  # UDP messages read per readiness event (SipDatagramProtocol)
MAX_DATAGRAM_SIZE = 65536  # larger than any UDP payload: a datagram is never truncated
MAX_CONNECTIONS_PER_SOURCE = 128  # incoming + outgoing TCP/TLS connections per remote host
TLS_HANDSHAKE_TIMEOUT = 10.0  # seconds (asyncio's own default is 60)


class SipTransportOwner(Protocol):
    """What the connections report to (implemented by the endpoint)."""

    def datagram_received(self, data: bytes, source: SipAddress) -> None: ...

    def stream_message(self, connection: SipStreamConnection, message: SipMessage) -> None: ...

    def stream_error(
        self, connection: SipStreamConnection, exc: SipRemoteError, data: bytes
    ) -> None: ...

    def connection_failed(self, connection: SipStreamConnection) -> None: ...


class SipDatagramProtocol(asyncio.DatagramProtocol):
    """The UDP socket: every datagram goes to the owner (§18.1.2, §18.2.1).

    asyncio reads one datagram per readiness event, so a loop iteration made
    long by other work (the media mixers' ticks) caps the SIP rate at one
    message per iteration and the socket's receive buffer overflows under load
    (requests, ACKs and their retransmissions dropped).  After each datagram
    the protocol therefore drains what is already queued, at most
    ``max_batch`` datagrams per event, through a duplicate of the socket.
    """

    def __init__(self, owner: SipTransportOwner, max_batch: int = MAX_DATAGRAMS_PER_EVENT) -> None:
        self._owner = owner
        self.max_batch = max_batch
        self._drain: socket.socket | None = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and self.max_batch > 1:
            self._drain = socket.socket(sock.family, sock.type, sock.proto, os.dup(sock.fileno()))
            self._drain.setblocking(False)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._drain is not None:
            self._drain.close()
            self._drain = None

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._owner.datagram_received(data, SipAddress("udp", str(addr[0]), addr[1]))
        for _ in range(self.max_batch - 1):
            if self._drain is None or self._transport is None or self._transport.is_closing():
                return  # closed by the owner meanwhile
            try:
                data, addr = self._drain.recvfrom(MAX_DATAGRAM_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error queued on the socket
                self.error_received(exc)
                continue
            self._owner.datagram_received(data, SipAddress("udp", str(addr[0]), addr[1]))

    def error_received(self, exc: Exception) -> None:
        logger.debug("udp error: %s", exc)  # ICMP errors: nothing to recover


class SipStreamConnection(asyncio.Protocol):
    """One TCP or TLS connection; ``remote`` is known before connecting (outgoing)."""

    def __init__(
        self,
        owner: SipTransportOwner,
        table: SipConnectionTable,
        transport_name: str,
        remote: SipAddress | None = None,
    ) -> None:
        self.owner = owner
        self.table = table
        self.transport_name = transport_name
        self.remote = remote
        self.parser = SipStreamParser(max_message_size=table.max_message_size)
        self.pending: list[tuple[bytes, SipMessage | None]] = []
        self.pending_size = 0
        self.closed = False
        self.addresses: set[SipAddress] = set()  # table keys pointing here
        self._transport: asyncio.Transport | None = None
        self._last_activity = 0.0
        self._idle_handle: asyncio.TimerHandle | None = None
        self._connect_task: asyncio.Task[Any] | None = None

    # -- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self.remote is None:  # incoming
            peer = transport.get_extra_info("peername")
            self.remote = SipAddress(self.transport_name, str(peer[0]), int(peer[1]))
            if not self.table.accept(self):
                logger.warning("refusing connection from %s: table full", self.remote)
                self.closed = True
                transport.abort()
                return
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        self._idle_handle = loop.call_later(self.table.idle_timeout, self._check_idle)
        for data, _ in self.pending:
            transport.write(data)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        self._last_activity = asyncio.get_running_loop().time()
        try:
            messages = self.parser.feed(data)
        except SipRemoteError as exc:
            self.owner.stream_error(self, exc, self.parser.failed_data)
            self.close()
            return
        for message in messages:
            if self.closed:
                return
            self.owner.stream_message(self, message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self.table.remove(self)

    # -- used by the endpoint ----------------------------------------------

    def write(self, data: bytes, message: SipMessage | None = None) -> bool:
        """Send ``data`` now, or queue it while connecting (False when over the cap)."""
        if self.closed:
            return False
        if self._transport is None:
            if self.pending_size + len(data) > self.table.max_pending_size:
                return False
            self.pending.append((data, message))
            self.pending_size += len(data)
            return True
        self._last_activity = asyncio.get_running_loop().time()
        self._transport.write(data)
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.table.remove(self)
        if self._transport is not None:
            self._transport.close()
        elif self._connect_task is not None:
            self._connect_task.cancel()

    def connect(self, ssl_context: ssl.SSLContext | None) -> None:
        """Open the outgoing connection to ``remote``; data written meanwhile is queued."""
        assert self.remote is not None
        loop = asyncio.get_running_loop()
        self._connect_task = loop.create_task(
            loop.create_connection(
                lambda: self, self.remote.host, self.remote.port, ssl=ssl_context
            )
        )
        self._connect_task.add_done_callback(self._connect_done)

    def _connect_done(self, task: asyncio.Task[Any]) -> None:
        self._connect_task = None
        if not task.cancelled() and task.exception() is None:
            return
        logger.info(
            "cannot connect to %s: %r", self.remote, None if task.cancelled() else task.exception()
        )
        self.close()
        self.owner.connection_failed(self)

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        remaining = self._last_activity + self.table.idle_timeout - loop.time()
        if remaining > 0:
            self._idle_handle = loop.call_later(remaining, self._check_idle)
        else:
            logger.debug("closing idle connection to %s", self.remote)
            self.close()


class SipConnectionTable:
    """Open TCP/TLS connections keyed by remote address (plus aliases, RFC 5923)."""

    def __init__(
        self,
        *,
        max_connections: int = 1024,
        idle_timeout: float = 300.0,
        max_message_size: int = 65535,
        max_pending_size: int = 262144,
        max_per_source: int = MAX_CONNECTIONS_PER_SOURCE,
    ) -> None:
        self.max_connections = max_connections
        self.max_per_source = max_per_source
        self._per_source: dict[str, int] = {}
        self.idle_timeout = idle_timeout
        self.max_message_size = max_message_size
        self.max_pending_size = max_pending_size
        self._by_address: dict[SipAddress, SipStreamConnection] = {}
        self._connections: set[SipStreamConnection] = set()

    def __len__(self) -> int:
        return len(self._connections)

    def get(self, address: SipAddress) -> SipStreamConnection | None:
        connection = self._by_address.get(address)
        return connection if connection is not None and not connection.closed else None

    def accept(self, connection: SipStreamConnection) -> bool:
        """Register a connection; False when the table is full or its source has its share."""
        if len(self._connections) >= self.max_connections or connection.remote is None:
            return False
        host = connection.remote.host
        if self._per_source.get(host, 0) >= self.max_per_source:
            return False
        self._per_source[host] = self._per_source.get(host, 0) + 1
        self._connections.add(connection)
        self._by_address[connection.remote] = connection
        connection.addresses.add(connection.remote)
        return True

    def open(
        self, owner: SipTransportOwner, dest: SipAddress, ssl_context: ssl.SSLContext | None
    ) -> SipStreamConnection:
        """The connection to ``dest``, reused or opened (RFC 3261 §18.1.1).

        The result is already closed (writes fail) when the table is full.
        """
        connection = self.get(dest)
        if connection is not None:
            return connection
        connection = SipStreamConnection(owner, self, dest.transport, dest)
        if self.accept(connection):
            connection.connect(ssl_context)
        else:
            connection.closed = True
        return connection

    def alias(self, address: SipAddress, connection: SipStreamConnection) -> None:
        """Reuse ``connection`` for requests to ``address`` (RFC 5923 ``alias``)."""
        if address.transport == connection.transport_name and not connection.closed:
            self._by_address[address] = connection
            connection.addresses.add(address)

    def remove(self, connection: SipStreamConnection) -> None:
        if connection in self._connections and connection.remote is not None:
            host = connection.remote.host
            left = self._per_source.get(host, 1) - 1
            if left > 0:
                self._per_source[host] = left
            else:
                self._per_source.pop(host, None)
        self._connections.discard(connection)
        for address in connection.addresses:
            if self._by_address.get(address) is connection:
                del self._by_address[address]
        connection.addresses.clear()

    def close_all(self) -> None:
        for connection in list(self._connections):
            connection.close()


_RECOVERED_HEADERS = frozenset({"via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"})


def recover_request(data: bytes, *, max_head_size: int = 8192) -> SipRequest | None:
    """The Request-Line, Via, From, To, Call-ID and CSeq of an unparsable request.

    Enough to answer 400 (RFC 3261 §8.2.6, §18.2.2) when the message parser
    gave up; ``None`` when not even a request line and a Via can be read.
    """
    head = data.lstrip(b"\r\n")[:max_head_size].split(b"\r\n\r\n", 1)[0]
    lines = head.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    parts = lines[0].split()  # lenient: extra or trailing whitespace (RFC 4475 §3.1.2.9/10)
    if len(parts) < 3 or not parts[-1].upper().startswith("SIP/") or parts[0] == "ACK":
        return None
    parts = [parts[0], " ".join(parts[1:-1]), parts[-1]]
    headers = SipHeaders()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and name.strip(" \t").lower() in _RECOVERED_HEADERS:
            try:
                headers.add(name.strip(" \t"), value.strip(" \t"))
            except SipError:
                continue
    if "Via" not in headers:
        return None
    try:
        return SipRequest(parts[0], parts[1], headers)
    except SipError:  # an unusable Request-URI: the answer does not need it
        try:
            return SipRequest(parts[0], "sip:invalid.invalid", headers)
        except SipError:
            return None


def __getattr__(name: str) -> type[SipEndpoint]:
    """``focus.transport.SipEndpoint`` (architecture contract) without an import cycle."""
    if name == "SipEndpoint":
        from focus.endpoint import SipEndpoint

        return SipEndpoint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
