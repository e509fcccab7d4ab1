"""The one asyncio adapter for secure byte streams (MSRP and BFCP over TLS or TLS-PSK).

:class:`SecureChannel` is an :class:`asyncio.Protocol` around any
:class:`mrf.tls_engine.TlsEngine`: it feeds the engine the socket's bytes,
writes the engine's records back, arms the handshake timeout and hands the
application bytes to the :class:`mrf.stream.StreamApp` above it only once the
handshake -- and with it the fingerprint or PSK check -- is complete.  It is the
:class:`mrf.stream.ByteStream` a :class:`mrf.stream.StreamDriver` writes to.
"""

from __future__ import annotations

import asyncio
import logging

from mrf.stream import StreamApp
from mrf.tls_engine import TlsEngine, TlsEngineError

logger = logging.getLogger(__name__)

__all__ = ["HANDSHAKE_TIMEOUT", "SecureChannel"]

HANDSHAKE_TIMEOUT = 10.0  # seconds from TCP accept/connect to a finished handshake


class SecureChannel(asyncio.Protocol):
    """TLS over an asyncio transport: ``engine`` does the TLS, ``app`` gets the bytes."""

    def __init__(self, engine: TlsEngine, app: StreamApp) -> None:
        self.engine = engine
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._settled: asyncio.Future[bool] | None = None

    # -- what the engine learnt ------------------------------------------------------

    @property
    def server_side(self) -> bool:
        return self.engine.server_side

    @property
    def peer_certificate(self) -> bytes | None:
        return self.engine.peer_certificate

    @property
    def cipher(self) -> str | None:
        return self.engine.cipher

    @property
    def version(self) -> str | None:
        return self.engine.version

    @property
    def peer_address(self) -> tuple[str, int] | None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return (str(peer[0]), int(peer[1])) if peer else None

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        loop = asyncio.get_running_loop()
        self._settled = loop.create_future()
        self._timer = loop.call_later(HANDSHAKE_TIMEOUT, self._fail, "handshake timeout")
        self._handshake()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.engine.receive_data(data)
        if not self.open:
            self._handshake()
        if self.open:
            self._read()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(str(exc) if exc else None)

    # -- API -------------------------------------------------------------------------

    async def wait_open(self) -> bool:
        """True once the handshake completed, False if the channel closed first."""
        if self.open or self.closed or self._settled is None:
            return self.open
        return await asyncio.shield(self._settled)

    def write(self, data: bytes) -> None:
        if not self.open or self.closed:
            return
        try:
            self.engine.write(data)
        except TlsEngineError as exc:
            self._fail(str(exc))
            return
        self._flush()

    def close(self) -> None:
        if self.closed:
            return
        if self.open:
            self.engine.shutdown()
            self._flush()
        if self.transport is not None:
            self.transport.close()
        self._finish(None)

    # -- internals -------------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            done = self.engine.handshake()
        except TlsEngineError as exc:
            self._flush()  # our alert, if any
            self._fail(str(exc))
            return
        self._flush()
        if not done:
            return
        if self._timer is not None:
            self._timer.cancel()
        self.open = True
        self._settle(True)
        self.app.channel_open(self)

    def _read(self) -> None:
        try:
            data, ended = self.engine.read()
        except TlsEngineError as exc:
            self._flush()
            self._fail(str(exc))
            return
        self._flush()
        if ended:
            self.close()
        if data and not self.closed:
            self.app.channel_data(self, data)

    def _flush(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        data = self.engine.data_to_send()
        if data:
            self.transport.write(data)

    def _fail(self, reason: str) -> None:
        if self.closed:
            return
        logger.info("TLS channel from %s closed: %s", self.peer_address, reason)
        if self.transport is not None:
            self.transport.close()
        self._finish(reason)

    def _settle(self, opened: bool) -> None:
        if self._settled is not None and not self._settled.done():
            self._settled.set_result(opened)

    def _finish(self, reason: str | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.engine.release()
        if self._timer is not None:
            self._timer.cancel()
        self._settle(False)
        was_open, self.open = self.open, False
        if was_open or reason is not None:
            self.app.channel_closed(self, reason)
