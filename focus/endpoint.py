"""The asyncio SIP endpoint: sockets + :class:`SipTransactionLayer` + a handler.

Shaped like aioquic's ``QuicConnectionProtocol``: every received message is fed
to the sans-I/O transaction layer with ``now = loop.time()``, then the endpoint
transmits what the layer queued, dispatches its events to the handler, and
re-arms ONE timer handle (the earliest of the layer's timers and the UAS 2xx
retransmission timers of the dialogs waiting for an ACK, RFC 3261 §13.3.1.4).

The handler implements :class:`SipHandler`; its methods may be plain functions
or coroutines (a task is only created for a coroutine).  A handler exception
never escapes: it is logged, counted and the request is answered 500.

Outgoing requests: :meth:`SipEndpoint.request` awaits the final response
(provisional ones go to an optional callback) and raises
:class:`SipRequestTimeout` on timer B/F or :class:`SipTransportFailure`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from focus import transport as transport_module
from focus.sip.dialog import AckTimedOut, SipAckWaiters, SipDialog
from focus.sip.message import (
    SipError,
    SipLocalError,
    SipRemoteError,
    SipRequest,
    SipResponse,
    make_response,
    parse_message,
)
from focus.sip.transaction import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    SipAddress,
    SipMessage,
    SipTimerConfig,
    SipTransactionEvent,
    SipTransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    cancel_request,
    client_key,
    new_branch,
    response_address,
)
from focus.transport import (
    SipConnectionTable,
    SipDatagramProtocol,
    SipStreamConnection,
    recover_request,
)
from focus.websocket import WEBSOCKET_TRANSPORTS, SipWebSocketBinding, SipWebSocketFlow

logger = logging.getLogger(__name__)

type _HandlerResult = Awaitable[None] | None


class SipHandler(Protocol):
    """The transaction user (TU) behind a :class:`SipEndpoint`."""

    def handle_request(self, endpoint: SipEndpoint, event: RequestReceived) -> _HandlerResult: ...

    def handle_ack(self, endpoint: SipEndpoint, event: AckReceived) -> _HandlerResult: ...

    def handle_cancel(self, endpoint: SipEndpoint, event: CancelReceived) -> _HandlerResult: ...

    def handle_timeout(
        self, endpoint: SipEndpoint, event: TransactionTimedOut | AckTimedOut
    ) -> _HandlerResult: ...


class SipRequestTimeout(SipError, TimeoutError):
    """No final response before timer B or F fired (RFC 3261 §17.1.1.2, §17.1.2.2)."""


class SipTransportFailure(SipError, ConnectionError):
    """The request could not be delivered (RFC 3261 §17.1.4)."""


@dataclass(slots=True)
class _ClientRequest:
    request: SipRequest
    dest: SipAddress
    future: asyncio.Future[SipResponse]
    on_provisional: Callable[[SipResponse], None] | None


def _same_address(host: str, source: str) -> bool:
    """``host`` (a Via sent-by) is the IP address ``source``, in any notation."""
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(source)
    except ValueError:
        return False


class SipEndpoint:
    """UDP/TCP/TLS listeners around one transaction layer (RFC 3261 §17, §18)."""

    def __init__(
        self,
        handler: SipHandler,
        *,
        timer_config: SipTimerConfig | None = None,
        client_ssl_context: ssl.SSLContext | None = None,
        max_message_size: int = 65535,
        max_connections: int = 1024,
        idle_timeout: float = 300.0,
        via_alias: bool = False,
    ) -> None:
        self.handler = handler
        self.via_alias = via_alias  # ask peers to reuse our TCP/TLS connections (RFC 5923)
        self.layer = SipTransactionLayer(timer_config)
        self.stats: dict[str, int] = dict.fromkeys(
            ("received", "sent", "dropped_malformed", "answered_malformed", "handler_errors",
             "send_errors", "keepalives"), 0,
        )  # fmt: skip
        self._client_ssl_context = client_ssl_context
        self._max_message_size = max_message_size
        self._connections = SipConnectionTable(
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            max_message_size=max_message_size,
        )
        self._max_connections = max_connections
        self._websockets: dict[SipAddress, SipWebSocketFlow] = {}  # RFC 7118 flows
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: list[asyncio.Server] = []
        self._local: dict[str, SipAddress] = {}
        self._clients: dict[str, _ClientRequest] = {}
        self._invites: set[tuple[str, int]] = set()  # (Call-ID, CSeq) of our pending INVITEs
        self._acks: dict[tuple[str, int], tuple[SipRequest, SipAddress]] = {}
        self.awaiting_ack = SipAckWaiters()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pumping = False

    # -- listeners ------------------------------------------------------------

    async def listen_udp(self, host: str, port: int) -> SipAddress:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: SipDatagramProtocol(self), local_addr=(host, port)
        )
        self._udp = transport
        return self._bound("udp", transport.get_extra_info("sockname"))

    async def listen_tcp(self, host: str, port: int) -> SipAddress:
        return await self._listen_stream("tcp", host, port, None)

    async def listen_tls(self, host: str, port: int, ssl_context: ssl.SSLContext) -> SipAddress:
        return await self._listen_stream("tls", host, port, ssl_context)

    async def _listen_stream(
        self, name: str, host: str, port: int, context: ssl.SSLContext | None
    ) -> SipAddress:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SipStreamConnection(self, self._connections, name), host, port, ssl=context,
            ssl_handshake_timeout=transport_module.TLS_HANDSHAKE_TIMEOUT if context else None,
        )  # fmt: skip
        self._servers.append(server)
        return self._bound(name, server.sockets[0].getsockname())

    def _bound(self, name: str, sockname: tuple[Any, ...]) -> SipAddress:
        address = SipAddress(name, str(sockname[0]), int(sockname[1]))
        self._local[name] = address
        return address

    async def close(self) -> None:
        """Stop listening, close connections, fail pending requests."""
        if self._timer is not None:
            self._timer.cancel()
        if self._udp is not None:
            self._udp.close()
        for server in self._servers:
            server.close()
        self._connections.close_all()
        for flow in list(self._websockets.values()):
            flow.close()
        self._websockets.clear()
        for server in self._servers:
            await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for client in self._clients.values():
            if not client.future.done():
                client.future.set_exception(SipTransportFailure("endpoint closed"))
        self._clients.clear()

    def listening(self) -> dict[str, bool]:
        """Which listeners are up, by transport (for health checks)."""
        up = {"udp": self._udp is not None and not self._udp.is_closing()}
        for server in self._servers:
            sockname = server.sockets[0].getsockname() if server.sockets else None
            name = next((t for t, a in self._local.items()
                         if sockname and (a.host, a.port) == (str(sockname[0]), int(sockname[1]))
                         and t != "udp"), None)  # fmt: skip
            if name is not None:
                up[name] = server.is_serving()
        return up

    def local_address(self, transport: str) -> SipAddress:
        """Our listening address for ``transport`` (for Via and Contact)."""
        address = self._local.get(transport) or next(iter(self._local.values()), None)
        if address is None:
            raise SipLocalError("the endpoint is not listening")
        return address

    def make_via(self, transport: str) -> str:
        """A Via value with a fresh ``z9hG4bK`` branch and ``rport`` (RFC 3581), and
        ``alias`` on TCP/TLS when ``via_alias`` is set (RFC 5923: a client that takes
        requests back on the connection it opened, e.g. a UE whose certificate no CA
        signed)."""
        address = self.local_address(transport)
        host = f"[{address.host}]" if ":" in address.host else address.host
        alias = ";alias" if self.via_alias and transport != "udp" else ""
        return (
            f"SIP/2.0/{transport.upper()} {host}:{address.port};branch={new_branch()};rport{alias}"
        )

    # -- SIP over WebSocket (RFC 7118; the web server owns the sockets) ---------

    def open_websocket_flow(
        self, remote: SipAddress, local: SipAddress, binding: SipWebSocketBinding
    ) -> SipWebSocketFlow | None:
        """Register an accepted WebSocket connection as a flow (None when full).

        ``local`` (the web listener, ``ws``/``wss``) is what our Via and Contact
        name on this transport.
        """
        if remote.transport not in WEBSOCKET_TRANSPORTS or remote in self._websockets:
            raise SipLocalError(f"not a new WebSocket flow: {remote}")
        if len(self._websockets) >= self._max_connections:
            return None
        self._local.setdefault(local.transport, local)
        flow = SipWebSocketFlow(remote, binding, max_pending_size=self._max_message_size * 4)
        self._websockets[remote] = flow
        return flow

    def websocket_received(self, flow: SipWebSocketFlow, data: bytes) -> None:
        """One WebSocket message: exactly one SIP message (RFC 7118 §5.2)."""
        if flow.closed or self._websockets.get(flow.remote) is not flow:
            return
        self.datagram_received(data, flow.remote)

    def websocket_closed(self, flow: SipWebSocketFlow) -> None:
        """The connection is gone: nothing more is sent to its address."""
        flow.close()
        if self._websockets.get(flow.remote) is flow:
            del self._websockets[flow.remote]

    def websocket_binding(self, source: SipAddress) -> SipWebSocketBinding | None:
        """Who the WebSocket flow ``source`` belongs to (None: not an open WS flow)."""
        flow = self._websockets.get(source)
        return None if flow is None or flow.closed else flow.binding

    def websocket_flows(self) -> list[SipWebSocketFlow]:
        return [flow for flow in self._websockets.values() if not flow.closed]

    # -- the TU's API ---------------------------------------------------------

    def respond(self, key: str, response: SipResponse, *, dialog: SipDialog | None = None) -> None:
        """Answer server transaction ``key``; with ``dialog`` a 2xx to INVITE is
        retransmitted until the ACK arrives (§13.3.1.4)."""
        now = asyncio.get_running_loop().time()
        self.layer.send_response(response, now, key=key)
        invite_2xx = 200 <= response.status < 300 and response.cseq[1] == "INVITE"
        peer = self.layer.peer(key)
        if dialog is not None and invite_2xx and peer is not None:
            self.awaiting_ack.add(dialog, response, peer, now)
        self._pump()

    async def request(
        self,
        request: SipRequest,
        dest: SipAddress,
        *,
        on_provisional: Callable[[SipResponse], None] | None = None,
    ) -> SipResponse:
        """Send ``request`` in a client transaction; return the final response."""
        self._ensure_via(request, dest)
        loop = asyncio.get_running_loop()
        key = self.layer.send_request(request, dest, loop.time())
        future: asyncio.Future[SipResponse] = loop.create_future()
        self._clients[key] = _ClientRequest(request, dest, future, on_provisional)
        if request.method == "INVITE":
            self._invites.add((request.call_id, request.cseq[0]))
        self._pump()
        return await future

    def cancel(self, invite: SipRequest) -> asyncio.Task[SipResponse] | None:
        """CANCEL a pending INVITE we sent (§9.1); the INVITE then gets a 487.

        Returns the CANCEL's own transaction (None when the INVITE is over).
        """
        client = self._clients.get(client_key(invite))
        if client is None or client.future.done():
            return None
        task = asyncio.ensure_future(self.request(cancel_request(invite), client.dest))
        self._track(task, None)
        return task

    def send_ack(self, ack: SipRequest, dest: SipAddress) -> None:
        """Send the ACK for a 2xx (no transaction, §13.2.2.4); re-sent on 2xx retransmits."""
        self._ensure_via(ack, dest)
        invite_id = (ack.call_id, ack.cseq[0])
        if invite_id in self._invites:  # kept until the INVITE transaction ends (timer M)
            self._acks[invite_id] = (ack, dest)
        self.layer.send_stateless(ack, dest)
        self._pump()

    def _ensure_via(self, request: SipRequest, dest: SipAddress) -> None:
        if "Via" not in request.headers:
            request.headers.prepend("Via", self.make_via(dest.transport))

    # -- inbound (SipTransportOwner) -------------------------------------------

    def datagram_received(self, data: bytes, source: SipAddress) -> None:
        self.stats["received"] += 1
        if not data.strip(b"\r\n"):
            self.stats["keepalives"] += 1  # RFC 5626 §4.4.1 CRLF keep-alive
            return
        try:
            message = parse_message(data, max_message_size=self._max_message_size)
        except SipRemoteError as exc:
            self._malformed(exc, source, data)
            return
        self._receive(message, source)

    def stream_message(self, connection: SipStreamConnection, message: SipMessage) -> None:
        self.stats["received"] += 1
        assert connection.remote is not None
        if isinstance(message, SipRequest):
            self._alias(connection, message)
        self._receive(message, connection.remote)

    def stream_error(
        self, connection: SipStreamConnection, exc: SipRemoteError, data: bytes = b""
    ) -> None:
        """A framing error: answer 400 when the request is known, then close."""
        if connection.remote is not None:
            self._malformed(exc, connection.remote, data)

    def connection_failed(self, connection: SipStreamConnection) -> None:
        """Outgoing connect failed: fail the client transactions queued on it."""
        for _, message in connection.pending:
            if isinstance(message, SipRequest) and message.method != "ACK":
                self.layer.transport_error(client_key(message))
        connection.pending.clear()
        self._pump()

    def _alias(self, connection: SipStreamConnection, request: SipRequest) -> None:
        """RFC 5923 spirit: a Via ``alias`` lets us reuse this connection.

        Only for the host the connection really comes from: RFC 5923 §10 binds an
        alias to an authenticated peer, and without a client certificate the source
        address is all we know.  Otherwise anyone could claim another host's
        address and receive what we send there (a dial-out INVITE with its keys).
        """
        try:
            via = request.vias[0]
        except (SipRemoteError, IndexError):
            return
        if "alias" not in via.params or connection.remote is None:
            return
        if not _same_address(via.host, connection.remote.host):
            logger.info("ignored Via alias %s from %s", via.host[:64], connection.remote.host)
            return
        port = via.port or (5061 if connection.transport_name == "tls" else 5060)
        address = SipAddress(connection.transport_name, connection.remote.host, port)
        self._connections.alias(address, connection)

    def _malformed(self, exc: SipRemoteError, source: SipAddress, data: bytes = b"") -> None:
        request = exc.message if isinstance(exc.message, SipRequest) else recover_request(data)
        if request is None or request.method == "ACK":
            self.stats["dropped_malformed"] += 1
            return
        try:
            response = make_response(request, exc.status, exc.reason, headers=exc.headers)
        except SipRemoteError:
            self.stats["dropped_malformed"] += 1
            return
        try:
            peer = response_address(request.vias[0], source)
        except (SipRemoteError, IndexError):
            peer = source  # unreadable Via: answer where the request came from
        self.stats["answered_malformed"] += 1
        self.layer.send_stateless(response, peer)
        self._pump()

    def _receive(self, message: SipMessage, source: SipAddress) -> None:
        self.layer.receive(message, source, asyncio.get_running_loop().time())
        self._pump()

    # -- the pump: transmit, dispatch, re-arm -----------------------------------

    def _pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            while True:
                for message, dest in self.layer.datagrams_to_send():
                    self._transmit(message, dest)
                event = self.layer.next_event()
                if event is None:
                    break
                self._dispatch(event)
        finally:
            self._pumping = False
        self._rearm()

    def _transmit(self, message: SipMessage, dest: SipAddress) -> None:
        data = bytes(message)
        if dest.transport == "udp":
            if self._udp is None:
                self.stats["send_errors"] += 1
                return
            self._udp.sendto(data, (dest.host, dest.port))
        elif dest.transport in WEBSOCKET_TRANSPORTS:
            if not self._websocket_write(dest, data, message):
                return
        elif not self._stream_for(dest).write(data, message):
            self.stats["send_errors"] += 1
            if isinstance(message, SipRequest) and message.method != "ACK":
                self.layer.transport_error(client_key(message))
            return
        self.stats["sent"] += 1

    def _websocket_write(self, dest: SipAddress, data: bytes, message: SipMessage) -> bool:
        """Over the flow ``dest`` only: a WebSocket client cannot be reached otherwise."""
        flow = self._websockets.get(dest)
        if flow is not None and flow.write(data):
            return True
        self.stats["send_errors"] += 1
        if isinstance(message, SipRequest) and message.method != "ACK":
            self.layer.transport_error(client_key(message))
        return False

    def _stream_for(self, dest: SipAddress) -> SipStreamConnection:
        context = None
        if dest.transport == "tls":
            context = self._client_ssl_context or ssl.create_default_context()
        return self._connections.open(self, dest, context)

    def _dispatch(self, event: SipTransactionEvent) -> None:
        handler = self.handler
        match event:
            case RequestReceived():
                self._call(handler.handle_request, event, event.request, event.key)
            case AckReceived():
                self.awaiting_ack.ack_received(event.request)
                self._call(handler.handle_ack, event)
            case CancelReceived():
                self._call(handler.handle_cancel, event)
            case ResponseReceived():
                self._response(event)
            case TransactionTimedOut():
                client = self._clients.get(event.key)
                if client is None:
                    self._call(handler.handle_timeout, event)
                elif not client.future.done():
                    client.future.set_exception(SipRequestTimeout(f"no answer to {event.key}"))
            case TransportFailed():
                client = self._clients.get(event.key)
                if client is not None and not client.future.done():
                    client.future.set_exception(SipTransportFailure(f"{client.dest}"))
            case TransactionTerminated():
                client = self._clients.pop(event.key, None)
                if client is not None and client.request.method == "INVITE":
                    invite_id = (client.request.call_id, client.request.cseq[0])
                    self._invites.discard(invite_id)
                    self._acks.pop(invite_id, None)

    def _response(self, event: ResponseReceived) -> None:
        client = self._clients.get(event.key)
        if client is None:
            return
        response = event.response
        if response.status < 200:
            if client.on_provisional is not None and not client.future.done():
                self._guard(client.on_provisional, response)
        elif not client.future.done():
            client.future.set_result(response)
        else:  # a retransmitted 2xx (RFC 6026 §7.2): repeat our ACK
            ack = self._acks.get((response.call_id, response.cseq[0]))
            if ack is not None:
                self.layer.send_stateless(*ack)

    def _guard(self, callback: Callable[[SipResponse], None], response: SipResponse) -> None:
        try:
            callback(response)
        except Exception:
            self.stats["handler_errors"] += 1
            logger.exception("provisional-response callback failed")

    def _call(
        self,
        method: Callable[[SipEndpoint, Any], _HandlerResult],
        event: object,
        request: SipRequest | None = None,
        key: str | None = None,
    ) -> None:
        """Run a handler method; exceptions are logged and answered 500."""
        try:
            result = method(self, event)
        except Exception:
            self._handler_failed(request, key)
            return
        if result is not None:
            self._track(asyncio.ensure_future(result), (request, key))

    def _track(
        self, task: asyncio.Future[Any], context: tuple[SipRequest | None, str | None] | None
    ) -> None:
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._task_done(done, context))

    def _task_done(
        self, task: asyncio.Future[Any], context: tuple[SipRequest | None, str | None] | None
    ) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        if context is None:
            logger.info("background request failed: %r", task.exception())
            return
        self._handler_failed(*context, exc=task.exception())

    def _handler_failed(
        self, request: SipRequest | None, key: str | None, exc: BaseException | None = None
    ) -> None:
        self.stats["handler_errors"] += 1
        logger.error("SIP handler failed", exc_info=exc or True)
        if request is not None and key is not None and self.layer.needs_final_response(key):
            self.respond(key, make_response(request, 500, "Server Internal Error"))

    # -- the single timer -------------------------------------------------------

    def _rearm(self) -> None:
        deadlines = [
            t for t in (self.layer.get_timer(), self.awaiting_ack.get_timer()) if t is not None
        ]
        when = min(deadlines) if deadlines else None
        if when == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = asyncio.get_running_loop().call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = asyncio.get_running_loop().time()
        self.layer.handle_timer(now)
        for item in self.awaiting_ack.handle_timer(now):
            if isinstance(item, AckTimedOut):
                self._call(self.handler.handle_timeout, item)
            else:
                self.layer.send_stateless(*item)
        self._pump()
