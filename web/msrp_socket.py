"""``/msrp``: MSRP over WebSocket (RFC 7977) on the web port, bound to the web session.

The upgrade is checked exactly as ``/sip``'s (:func:`web.sip_socket.check_upgrade`
and :func:`web.sip_socket.session_binding`: transport, the subprotocol
``msrp`` (RFC 7977 §4), a same-origin ``Origin``, the session cookie of a
signed-in account with a SIP identity or of an opened invite); a refusal is a
close before accept, which the client sees as HTTP ``403``.

The accepted connection is a :class:`WebSocketStream` (a
:class:`mrf.stream.ByteStream`) under a :class:`mrf.chat.ChatLink` made for
the session's identity: the switch binds it only to that identity's chat
sessions whose ``a=path`` (offered over ``/sip`` in a ``TCP/WSS/MSRP`` or,
on loopback, ``TCP/WS/MSRP`` line) the first request's From-Path names
(``ChatLink._resolve``, RFC 7977 §5).  What comes over it is relayed as that
identity: a CPIM ``From`` naming anyone else gets a 403 REPORT, never a copy.
One WebSocket message carries one MSRP chunk (RFC 7977 §5.1); the core reads
a byte stream, so messages are fed in order and what it writes goes out as
one text message per flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from mrf.stream import StreamApp
from web.sip_socket import POLICY_VIOLATION, UpgradeRefused, check_upgrade, session_binding
from web.state import WebState

logger = logging.getLogger(__name__)

SUBPROTOCOL = "msrp"  # RFC 7977 §4 (IANA WebSocket Subprotocol Name Registry)


class WebSocketStream:
    """A :class:`mrf.stream.ByteStream` over one accepted WebSocket (RFC 7977 §5.1)."""

    def __init__(self, peer: tuple[str, int] | None, secure: bool) -> None:
        self._peer = peer
        self._secure = secure
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        self._pending = bytearray()

    @property
    def peer_address(self) -> tuple[str, int] | None:
        return self._peer

    @property
    def server_side(self) -> bool:
        return True

    @property
    def peer_certificate(self) -> bytes | None:
        return None  # the web session authenticates, not a certificate

    @property
    def cipher(self) -> str | None:
        return None

    @property
    def version(self) -> str | None:
        return "wss" if self._secure else "ws"

    def write(self, data: bytes) -> None:
        """Queue what the core wrote, one MSRP request or response per WebSocket message
        (RFC 7977 §5.1: a flush may hold several)."""
        if self.closed:
            return
        self._pending += data
        while (end := _message_end(self._pending)) is not None:
            self.outbox.put_nowait(bytes(self._pending[:end]))
            del self._pending[:end]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(None)


def _message_end(data: bytearray) -> int | None:
    """The length of the first complete MSRP message of ``data`` (RFC 4975 §7.1: its
    end-line is seven dashes, its transaction ID and a continuation flag), or None."""
    line = data.find(b"\r\n")
    parts = bytes(data[:line]).split(b" ") if line > 0 else []
    if len(parts) < 3 or parts[0] != b"MSRP":
        return None
    marker = b"\r\n-------" + parts[1]
    start = line
    while (found := data.find(marker, start)) >= 0:
        end = found + len(marker)
        if bytes(data[end : end + 1]) in (b"$", b"+", b"#") and data[end + 1 : end + 3] == b"\r\n":
            return end + 3
        start = found + 1
    return None


async def msrp_socket(websocket: WebSocket) -> None:
    """The ``/msrp`` WebSocket route."""
    state: WebState = websocket.app.state.web
    chat = getattr(state.services.focus, "chat", None)
    websocket_link = getattr(chat, "websocket_link", None)
    client = websocket.client
    try:
        check_upgrade(websocket, state, SUBPROTOCOL)
        binding = await session_binding(websocket, state)
        if websocket_link is None:
            raise UpgradeRefused("chat (MSRP) is not running")
    except UpgradeRefused as exc:
        logger.info("refused MSRP WebSocket upgrade from %s: %s", client, exc)
        await websocket.close(code=POLICY_VIOLATION)
        return
    await websocket.accept(subprotocol=SUBPROTOCOL)
    peer = (client.host, client.port) if client is not None else None
    stream = WebSocketStream(peer, websocket.url.scheme == "wss")
    driver: StreamApp = websocket_link(binding.identity).driver
    driver.channel_open(stream)
    sender = asyncio.create_task(_send_loop(websocket, stream), name=f"msrp-ws {peer}")
    reason: str | None = None
    try:
        reason = await _receive_loop(websocket, stream, driver)
    finally:
        stream.close()
        driver.channel_closed(stream, reason)
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        logger.info("MSRP WebSocket %s closed", peer)


async def _receive_loop(websocket: WebSocket, stream: WebSocketStream, driver: StreamApp) -> str:
    while not stream.closed:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return "WebSocket closed"
        if message["type"] == "websocket.disconnect":
            return "WebSocket closed"
        data = message.get("bytes")
        if data is None:
            data = str(message.get("text") or "").encode("utf-8", "surrogatepass")
        driver.channel_data(stream, data)
    return "closed by the switch"


async def _send_loop(websocket: WebSocket, stream: WebSocketStream) -> None:
    try:
        while (data := await stream.outbox.get()) is not None:
            try:
                await websocket.send_text(data.decode("utf-8"))
            except UnicodeDecodeError:
                await websocket.send_bytes(data)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.close(code=1000)
