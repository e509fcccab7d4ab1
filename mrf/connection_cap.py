"""Per-source connection caps for the MSRP and BFCP TLS listeners (issue 10).

One address may hold at most ``limit`` connections to a listener at a time;
beyond that a new connection is aborted as soon as it is accepted, before any
TLS byte is read or any handshake work is done (so a single host cannot
exhaust the listener's file descriptors or CPU, while others still get in).
The SIP listeners have the same rule in :class:`focus.transport.SipConnectionTable`.

:class:`SourceCap` holds the counts; :meth:`SourceCap.wrap` turns a protocol
factory (e.g. one making :class:`mrf.secure_channel.SecureChannel`) into one
whose protocols are counted and refused at the cap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

__all__ = ["MAX_CONNECTIONS_PER_SOURCE", "SourceCap"]

MAX_CONNECTIONS_PER_SOURCE = 64  # a participant needs one MSRP and one BFCP connection


class SourceCap:
    """Open connections per remote address, refused beyond ``limit``."""

    def __init__(self, limit: int = MAX_CONNECTIONS_PER_SOURCE) -> None:
        if limit < 1:
            raise ValueError(f"the per-source connection limit must be >= 1, got {limit}")
        self.limit = limit
        self.counts: dict[str, int] = {}

    def acquire(self, host: str) -> bool:
        """Count one more connection from ``host``; False (not counted) at the cap."""
        count = self.counts.get(host, 0)
        if count >= self.limit:
            return False
        self.counts[host] = count + 1
        return True

    def release(self, host: str) -> None:
        count = self.counts.get(host, 0) - 1
        if count > 0:
            self.counts[host] = count
        else:
            self.counts.pop(host, None)

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` that enforces this cap."""
        return lambda: _CappedProtocol(self, factory)


class _CappedProtocol(asyncio.Protocol):
    """Counts its connection; at the cap aborts it without creating the inner protocol."""

    def __init__(self, cap: SourceCap, factory: Callable[[], asyncio.Protocol]) -> None:
        self._cap = cap
        self._factory = factory
        self._inner: asyncio.Protocol | None = None
        self._host: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        if not self._cap.acquire(host):
            logger.info("connection from %s refused: %d already open", host, self._cap.limit)
            if isinstance(transport, asyncio.Transport):
                transport.abort()  # no TLS alert, no handshake: just the RST
            else:
                transport.close()
            return
        self._host = host
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._host is not None:
            self._cap.release(self._host)
            self._host = None
        if self._inner is not None:
            self._inner.connection_lost(exc)
