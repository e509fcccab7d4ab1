"""The one driver of a sans-I/O stream core (MSRP, BFCP) over a secure byte stream.

The seams, from the socket up::

    asyncio transport ─ SecureChannel(TlsEngine) ─┐   (mrf/secure_channel.py, mrf/tls_engine.py)
    (a WebSocket transport, later) ───────────────┤   any ByteStream
                                                  ▼
                         StreamDriver(core, handler)   (this module: a StreamApp)
                          │ core.receive_data(bytes, now)      bytes in
                          │ handler.stream_events(driver)      events out (core.next_event())
                          │ driver.flush()                     bytes out + one timer
                          ▼
                   MsrpConnection / BfcpConnection    (sans-I/O cores)

* :class:`ByteStream` is what a driver writes to: :class:`mrf.secure_channel.SecureChannel`
  (TLS / TLS-PSK) today; an MSRP or BFCP WebSocket transport (RFC 7977, RFC 8857)
  plugs in by implementing it and calling the driver's three ``channel_*``
  methods (:class:`StreamApp`) -- nothing in the cores or the services changes.
* :class:`StreamCore` is the shape of every stream core: bytes and ``now`` in,
  events and bytes out, one timer (aioquic's ``QuicConnection``, h11).
* :class:`StreamHandler` is the service's side: it drains the events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Protocol

from mrf.tls_engine import StreamSecurity

__all__ = ["ByteStream", "StreamApp", "StreamCore", "StreamDriver", "StreamHandler"]


class ByteStream(StreamSecurity, Protocol):
    """A connected, authenticated byte stream (TLS channel, later WebSocket)."""

    @property
    def peer_address(self) -> tuple[str, int] | None: ...

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class StreamApp(Protocol):
    """What sits on a :class:`ByteStream`: told when it opens, gets data, is told when it ends."""

    def channel_open(self, channel: ByteStream) -> None: ...
    def channel_data(self, channel: ByteStream, data: bytes) -> None: ...
    def channel_closed(self, channel: ByteStream, reason: str | None) -> None: ...


class StreamCore[E](Protocol):
    """A sans-I/O stream protocol core (``MsrpConnection``, ``BfcpConnection``)."""

    def receive_data(self, data: bytes, now: float) -> None: ...
    def data_to_send(self) -> bytes: ...
    def next_event(self) -> E | None: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


class StreamHandler[E](Protocol):
    """The service above a driver (the MSRP switch, the floor control server)."""

    def stream_open(self, driver: StreamDriver[E]) -> None: ...
    def stream_events(self, driver: StreamDriver[E]) -> None:
        """Drain ``driver.events()`` and flush the drivers touched (this one included)."""

    def stream_closed(self, driver: StreamDriver[E], reason: str | None) -> None: ...


class StreamDriver[E]:
    """Runs ``core`` over a :class:`ByteStream`: feed, drain, flush, re-arm one timer."""

    def __init__(self, core: StreamCore[E], handler: StreamHandler[E]) -> None:
        self.core = core
        self.handler = handler
        self.channel: ByteStream | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None

    # -- StreamApp -------------------------------------------------------------------

    def channel_open(self, channel: ByteStream) -> None:
        if self.channel is not None and self.channel is not channel:
            channel.close()  # one stream per core: a second connection is refused
            return
        self.channel = channel
        self.handler.stream_open(self)

    def channel_data(self, channel: ByteStream, data: bytes) -> None:
        if channel is not self.channel:
            return
        self.core.receive_data(data, asyncio.get_running_loop().time())
        self.handler.stream_events(self)

    def channel_closed(self, channel: ByteStream, reason: str | None) -> None:
        if self.channel is not None and channel is not self.channel:
            return  # a second connection we refused
        self.channel = None  # (None already: it failed before it opened, e.g. its handshake)
        self._cancel_timer()
        self.handler.stream_closed(self, reason)

    # -- for the handler -------------------------------------------------------------

    def events(self) -> Iterator[E]:
        """The core's pending events, oldest first."""
        while (event := self.core.next_event()) is not None:
            yield event

    def flush(self) -> None:
        """Everything the core queued in one write; re-arm the timer if its deadline moved."""
        data = self.core.data_to_send()
        if data and self.channel is not None:
            self.channel.write(data)
        deadline = self.core.get_timer()
        if deadline == self._deadline and (self._timer is not None or deadline is None):
            return
        self._cancel_timer()
        self._deadline = deadline
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def close(self) -> None:
        """Stop the timer and close the stream (the handler hears of it in ``stream_closed``)."""
        self._cancel_timer()
        if self.channel is not None:
            self.channel.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._deadline = None

    def _on_timer(self) -> None:
        self._timer = None
        self._deadline = None
        self.core.handle_timer(asyncio.get_running_loop().time())
        self.handler.stream_events(self)
