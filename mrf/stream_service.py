"""The one listener service of the secure streams (MSRP and BFCP over TLS / TLS-PSK).

:class:`SecureStreamService` owns every socket of one protocol; the protocol's
service (:class:`mrf.chat.ChatRelay`, :class:`mrf.floor.FloorControl`) gives
it only how to make the app of a new connection and which certificates are
waited for:

* **one shared listener** (``msrp.port`` / ``bfcp.port``): certificate TLS;
  the handshake completes only when ``any_waiting(der)`` says the client's
  certificate matches the SDP fingerprints of a session still waiting for its
  connection (RFC 8122 §5); the per-source cap (:class:`mrf.connection_cap.SourceCap`)
  aborts a connection beyond it before any TLS byte;
* **a per-session TLS-PSK listener** (MIKEY-TICKET, TS 33.328 Annex H): the PSK
  identity is empty (Annex H.2), so a shared listener could not tell whose key
  to use; each such session gets its own ephemeral port keyed by its TEK,
  bound at once (the answer names the port) and served right after.  Closing a
  session's listener before it is served closes it when it comes up (never a
  leak);
* **active connect** for an offer's ``a=setup:passive``: we are the TLS
  client (certificate checked by a verifier, or TLS-PSK);
* one listen backlog, the handshake timeout of :mod:`mrf.secure_channel` on
  every connection, one connect timeout.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from pathlib import Path

from OpenSSL import SSL

from focus.sdp.secret import SecretBytes
from mrf.connection_cap import SourceCap
from mrf.secure_channel import SecureChannel
from mrf.stream import StreamApp
from mrf.tls_engine import CertificateTlsEngine, PskTlsEngine, make_context
from mrf.tls_psk import psk_client_context, psk_server_context

logger = logging.getLogger(__name__)

__all__ = ["CONNECT_TIMEOUT", "LISTEN_BACKLOG", "SecureStreamService"]

LISTEN_BACKLOG = 8  # pending TCP connections per listener (shared and per-session)
CONNECT_TIMEOUT = 10.0  # seconds for TCP connect + handshake when we are the client


@dataclass(slots=True)
class _PskListener:
    """One session's TLS-PSK listener: its socket, then its server once served."""

    sock: socket.socket
    server: asyncio.Server | None = None
    started: bool = False
    closed: bool = False


class SecureStreamService:
    """Listeners and outgoing connections of one secure-stream protocol."""

    def __init__(
        self,
        name: str,
        host: str,
        context: SSL.Context,
        *,
        source_cap: SourceCap | None = None,
        keylog_filename: Path | None = None,
    ) -> None:
        self.name = name  # "MSRP" or "BFCP", for the logs
        self.host = host
        self.context = context
        self.source_cap = source_cap or SourceCap()
        self.keylog_filename = keylog_filename
        self.port = 0
        self._server: asyncio.Server | None = None
        self._psk_servers: dict[Hashable, _PskListener] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def with_certificate(
        cls,
        name: str,
        host: str,
        cert: Path,
        key: Path,
        *,
        source_cap: SourceCap | None = None,
        keylog_filename: Path | None = None,
    ) -> SecureStreamService:
        """A service presenting our certificate (``make_context``: the one cipher policy)."""
        context = make_context(cert, key, keylog_filename=keylog_filename)
        return cls(name, host, context, source_cap=source_cap, keylog_filename=keylog_filename)

    async def listen(
        self, port: int, accept: Callable[[], StreamApp], any_waiting: Callable[[bytes], bool]
    ) -> int:
        """Open the shared certificate listener; returns the bound port."""

        def channel() -> asyncio.Protocol:
            engine = CertificateTlsEngine(self.context, any_waiting, server_side=True)
            return SecureChannel(engine, accept())

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.source_cap.wrap(channel), self.host, port, backlog=LISTEN_BACKLOG
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def listen_psk(
        self, owner: Hashable, psk: SecretBytes | bytes, accept: Callable[[], StreamApp]
    ) -> int:
        """Bind ``owner``'s own TLS-PSK listener now (its port goes in the answer), serve it
        next; returns the port.  :meth:`close_psk` ``(owner)`` closes it, served or not."""
        self.close_psk(owner)
        listener = _PskListener(self._bind_socket())
        self._psk_servers[owner] = listener
        context = psk_server_context(psk, keylog_filename=self.keylog_filename)

        def channel() -> asyncio.Protocol:
            return SecureChannel(PskTlsEngine(context, server_side=True), accept())

        async def serve() -> None:
            if listener.closed:  # dropped before we ran: close_psk closed the socket
                return
            listener.started = True
            loop = asyncio.get_running_loop()
            try:
                server = await loop.create_server(channel, sock=listener.sock)
            except BaseException:
                listener.sock.close()
                raise
            listener.server = server
            if listener.closed:  # dropped while the server was starting
                server.close()

        self.spawn(serve())
        return int(listener.sock.getsockname()[1])

    def close_psk(self, owner: Hashable) -> None:
        """Close ``owner``'s TLS-PSK listener (or have it closed as soon as it is served)."""
        listener = self._psk_servers.pop(owner, None)
        if listener is None:
            return
        listener.closed = True
        if listener.server is not None:
            listener.server.close()
        elif not listener.started:  # else serve() closes it once create_server returns
            listener.sock.close()

    async def connect(
        self,
        host: str,
        port: int,
        app: StreamApp,
        *,
        verifier: Callable[[bytes], bool],
        psk: SecretBytes | bytes | None = None,
    ) -> SecureChannel | None:
        """TLS client to ``host:port`` (``a=setup:passive`` offers, RFC 4145): the channel
        once its handshake is done, None when it failed (logged).  With ``psk`` it is
        TLS-PSK (the key authenticates, ``verifier`` is not used); else ``verifier``
        judges the peer's certificate."""

        def channel() -> SecureChannel:
            if psk is not None:
                context = psk_client_context(psk, keylog_filename=self.keylog_filename)
                return SecureChannel(PskTlsEngine(context, server_side=False), app)
            engine = CertificateTlsEngine(self.context, verifier, server_side=False)
            return SecureChannel(engine, app)

        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, protocol = await loop.create_connection(channel, host, port)
                if await protocol.wait_open():
                    return protocol
        except (OSError, TimeoutError, SSL.Error) as exc:
            logger.info("%s connect to %s:%d failed: %s", self.name, host, port, exc)
            return None
        logger.info("%s connect to %s:%d failed: TLS handshake", self.name, host, port)
        return None

    @property
    def busy(self) -> bool:
        """True while a connect attempt or a listener start is under way."""
        return bool(self._tasks)

    def spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        """Run ``coroutine`` as a task this service cancels on :meth:`close`."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for owner in list(self._psk_servers):
            self.close_psk(owner)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _bind_socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.bind((self.host, 0))
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock
