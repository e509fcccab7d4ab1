"""``/sip``: SIP over WebSocket (RFC 7118) on the web port, bound to the web session.

The upgrade is refused (uvicorn answers ``403`` to a close before accept)
unless all of these hold, checked in this order:

1. the transport: ``wss``, or ``ws`` while the web server listens on loopback
   only (SIP in clear over a network is never offered);
2. the client asks for the subprotocol ``sip`` (RFC 7118 §4.1);
3. ``Origin`` is this server's own origin (scheme and ``Host``): a page of
   another site cannot ride on the visitor's session cookie;
4. the session cookie names a session that opened a usable invite link (the
   flow then reaches that invite's conference only, as the invite's identity)
   or is signed in to an account with a SIP identity.

The accepted connection becomes a :class:`focus.websocket.SipWebSocketFlow`
of the focus's SIP endpoint, bound to that identity: the focus admits what
comes over it as the session's identity, whatever From or
P-Asserted-Identity say.  When the connection closes, the calls made over it
end; when the invite is revoked, the focus ends them with a BYE and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from focus.endpoint import SipEndpoint
from focus.sip.transaction import SipAddress
from focus.tables import utcnow
from focus.websocket import SipWebSocketBinding, SipWebSocketFlow
from web.auth import SESSION_COOKIE
from web.state import WebState

logger = logging.getLogger(__name__)

SUBPROTOCOL = "sip"  # RFC 7118 §4.1 (IANA WebSocket Subprotocol Name Registry)
POLICY_VIOLATION = 1008  # RFC 6455 §7.4.1


class UpgradeRefused(Exception):
    """Why an upgrade on ``/sip`` is refused (logged; the client sees a 403)."""


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_upgrade(websocket: WebSocket, state: WebState, subprotocol: str = SUBPROTOCOL) -> None:
    """Transport, subprotocol and Origin (points 1-3 of the module docstring); the
    ``/msrp`` route (:mod:`web.msrp_socket`) asks for its own ``subprotocol``."""
    scheme = websocket.url.scheme
    if scheme != "wss" and not _loopback(state.settings.web.host):
        raise UpgradeRefused("plain ws is offered on loopback only; use wss")
    if subprotocol not in websocket.scope.get("subprotocols", []):
        raise UpgradeRefused(f"the WebSocket subprotocol {subprotocol!r} was not requested")
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    expected = f"{'https' if scheme == 'wss' else 'http'}://{host}"
    if origin is None or host is None or origin.lower() != expected.lower():
        raise UpgradeRefused(f"cross-origin upgrade from {str(origin)[:80]!r}")


async def session_binding(websocket: WebSocket, state: WebState) -> SipWebSocketBinding:
    """The identity of the connection's web session (point 4), or :class:`UpgradeRefused`."""
    session = state.sessions.get(websocket.cookies.get(SESSION_COOKIE))
    if session is None:
        raise UpgradeRefused("no web session: sign in or open an invite link")
    store = state.store
    if session.invite_id is not None:
        invite = await asyncio.to_thread(store.get_invite, session.invite_id)
        if invite is None or not invite.usable(utcnow()):
            raise UpgradeRefused("the invite of this session is revoked or expired")
        conference = await asyncio.to_thread(store.get_conference_by_id, invite.conference_id)
        if conference is None:
            raise UpgradeRefused("the invite's conference was deleted")
        return SipWebSocketBinding(
            invite.uri, conference=conference.name, invite_id=invite.id,
            account_id=session.account_id,
        )  # fmt: skip
    if session.account_id is None:
        raise UpgradeRefused("no web session: sign in or open an invite link")
    account = await asyncio.to_thread(store.get_account_by_id, session.account_id)
    if account is None or account.sip_uri is None:
        raise UpgradeRefused("the signed-in account has no SIP identity")
    return SipWebSocketBinding(account.sip_uri, account_id=account.id)


async def sip_socket(websocket: WebSocket) -> None:
    """The ``/sip`` WebSocket route."""
    state: WebState = websocket.app.state.web
    focus = state.services.focus
    endpoint = getattr(focus, "endpoint", None)
    client = websocket.client
    try:
        check_upgrade(websocket, state)
        binding = await session_binding(websocket, state)
        if endpoint is None or client is None:
            raise UpgradeRefused("the SIP endpoint is not running")
    except UpgradeRefused as exc:
        state.sip_socket_refusals += 1
        logger.info("refused SIP WebSocket upgrade from %s: %s", client, exc)
        await websocket.close(code=POLICY_VIOLATION)
        return
    transport = "wss" if websocket.url.scheme == "wss" else "ws"
    server = websocket.scope.get("server") or ("127.0.0.1", 0)
    remote = SipAddress(transport, client.host, client.port)
    local = SipAddress(transport, str(server[0]), int(server[1] or 0))
    flow = endpoint.open_websocket_flow(remote, local, binding)
    if flow is None:
        logger.warning("refused SIP WebSocket from %s: too many connections", client)
        await websocket.close(code=1013)  # try again later
        return
    await websocket.accept(subprotocol=SUBPROTOCOL)
    logger.info("SIP WebSocket %s open for %s", remote, binding.identity)
    sender = asyncio.create_task(_send_loop(websocket, flow), name=f"sip-ws {remote}")
    try:
        await _receive_loop(websocket, flow, endpoint)
    finally:
        endpoint.websocket_closed(flow)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await focus.disconnect_flows([remote], reason="WebSocket closed")
        logger.info("SIP WebSocket %s closed", remote)


async def _receive_loop(
    websocket: WebSocket, flow: SipWebSocketFlow, endpoint: SipEndpoint
) -> None:
    while not flow.closed:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None:
            data = str(message.get("text") or "").encode("utf-8", "surrogatepass")
        endpoint.websocket_received(flow, data)


async def _send_loop(websocket: WebSocket, flow: SipWebSocketFlow) -> None:
    """Write the flow's outbox, one SIP message per WebSocket message (RFC 7118 §5.2)."""
    try:
        while True:
            data = await flow.outbox.get()
            if data is None:
                break
            flow.sent(data)
            try:
                await websocket.send_text(data.decode("utf-8"))
            except UnicodeDecodeError:
                await websocket.send_bytes(data)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
    with contextlib.suppress(RuntimeError, OSError):
        await websocket.close(code=1000)
