"""SIP over WebSocket flows (RFC 7118) in the endpoint: one message per frame, own flow only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from focus.endpoint import SipEndpoint, SipTransportFailure
from focus.sip.dialog import dialog_from_uas
from focus.sip.message import SipRequest, SipResponse, make_response, parse_message
from focus.sip.transaction import SipAddress
from focus.websocket import SipWebSocketBinding, SipWebSocketFlow

from .test_transport import Handler, run

BROWSER = SipAddress("ws", "127.0.0.1", 50123)
OTHER = SipAddress("ws", "127.0.0.1", 50124)
WEB = SipAddress("ws", "127.0.0.1", 8080)
ALICE = SipWebSocketBinding("sip:alice@example.com")


def _request(method: str, *, content_length: bool = False, to_tag: str = "") -> bytes:
    """What JsSIP sends: ``.invalid`` Via and Contact hosts; Content-Length optional."""
    lines = [
        f"{method} sip:room@example.com SIP/2.0",
        "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks",
        "Max-Forwards: 70",
        "From: <sip:mallory@example.com>;tag=1",
        f"To: <sip:room@example.com>{to_tag}",
        "Call-ID: ws-call-1",
        f"CSeq: 1 {method}",
        "Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>",
    ]
    if content_length:
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def sync(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Run an async test body on a fresh loop (see ``test_transport.run``)."""

    def case() -> None:
        run(test)

    case.__name__ = test.__name__
    return case


async def _next(flow: SipWebSocketFlow) -> SipRequest | SipResponse:
    data = await asyncio.wait_for(flow.outbox.get(), 2.0)
    assert data is not None, "the flow was closed"
    flow.sent(data)
    return parse_message(data)


async def _endpoint() -> tuple[SipEndpoint, SipWebSocketFlow]:
    endpoint = SipEndpoint(Handler())
    await endpoint.listen_udp("127.0.0.1", 0)
    flow = endpoint.open_websocket_flow(BROWSER, WEB, ALICE)
    assert flow is not None
    return endpoint, flow


@sync
async def test_a_request_over_the_flow_is_answered_over_it_with_its_binding() -> None:
    endpoint, flow = await _endpoint()
    try:
        endpoint.websocket_received(flow, _request("OPTIONS"))  # no Content-Length (§5.2)
        response = await _next(flow)
        assert isinstance(response, SipResponse) and response.status == 200
        assert response.vias[0].transport == "WS"
        assert response.vias[0].params["received"] == "127.0.0.1"
        assert endpoint.websocket_binding(BROWSER) == ALICE
        assert endpoint.websocket_binding(OTHER) is None
        assert endpoint.make_via("ws").startswith("SIP/2.0/WS 127.0.0.1:8080;")
    finally:
        await endpoint.close()


@sync
async def test_requests_to_the_flow_go_over_it_and_nowhere_else() -> None:
    endpoint, flow = await _endpoint()
    try:
        invite = parse_message(_request("INVITE", content_length=True))
        assert isinstance(invite, SipRequest)
        response = make_response(invite, 200, to_tag="focus")
        dialog = dialog_from_uas(invite, response, transport="ws", flow=BROWSER)
        assert dialog.destination() == BROWSER, "not the .invalid Contact host"
        bye = dialog.create_request("BYE")
        sent = asyncio.ensure_future(endpoint.request(bye, dialog.destination()))
        received = await _next(flow)
        assert isinstance(received, SipRequest) and received.method == "BYE"
        assert received.vias[0].transport == "WS"
        endpoint.websocket_received(flow, bytes(make_response(received, 200)))
        assert (await asyncio.wait_for(sent, 2.0)).status == 200
        with pytest.raises(SipTransportFailure):  # another connection's address: not ours
            await asyncio.wait_for(endpoint.request(dialog.create_request("BYE"), OTHER), 2.0)
        endpoint.websocket_closed(flow)
        assert await asyncio.wait_for(flow.outbox.get(), 1.0) is None
        with pytest.raises(SipTransportFailure):  # a closed flow is gone for good
            await asyncio.wait_for(endpoint.request(dialog.create_request("BYE"), BROWSER), 2.0)
    finally:
        await endpoint.close()


@sync
async def test_malformed_input_is_answered_400_and_the_flow_stays() -> None:
    endpoint, flow = await _endpoint()
    try:
        bad = _request("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")
        endpoint.websocket_received(flow, bad)
        response = await _next(flow)
        assert isinstance(response, SipResponse) and response.status == 400
        endpoint.websocket_received(flow, _request("OPTIONS"))
        response = await _next(flow)
        assert isinstance(response, SipResponse) and response.status == 200
    finally:
        await endpoint.close()


@sync
async def test_a_client_that_does_not_read_is_disconnected() -> None:
    flow = SipWebSocketFlow(BROWSER, ALICE, max_pending_size=100)
    assert flow.write(b"x" * 60)
    assert not flow.write(b"y" * 60), "over the cap"
    assert flow.closed and not flow.write(b"z")
    assert flow.outbox.get_nowait() == b"x" * 60 and flow.outbox.get_nowait() is None


@sync
async def test_a_flow_address_is_registered_once() -> None:
    endpoint, _ = await _endpoint()
    try:
        from focus.sip.message import SipLocalError

        with pytest.raises(SipLocalError):
            endpoint.open_websocket_flow(BROWSER, WEB, ALICE)
        with pytest.raises(SipLocalError):
            endpoint.open_websocket_flow(SipAddress("tcp", "127.0.0.1", 1), WEB, ALICE)
    finally:
        await endpoint.close()
