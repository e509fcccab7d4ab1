"""Who the focus admits: From/PAI over UDP/TCP/TLS, the web session over WebSocket."""

from __future__ import annotations

from typing import Any

from focus.policy import IdentitySource, not_listed
from focus.service import FocusConfig, FocusService
from focus.sip.message import parse_message
from focus.sip.refusal import SipRefusal
from focus.sip.transaction import RequestReceived, SipAddress
from focus.websocket import SipWebSocketBinding

PROXY = "127.0.0.2"
FLOW = SipAddress("ws", "127.0.0.1", 50000)


class Flows:
    """The endpoint's view of its WebSocket flows (what ``identify`` asks)."""

    def __init__(self, bindings: dict[SipAddress, SipWebSocketBinding]) -> None:
        self.bindings = bindings

    def websocket_binding(self, source: SipAddress) -> SipWebSocketBinding | None:
        return self.bindings.get(source)


def _event(source: SipAddress) -> RequestReceived:
    data = (
        b"INVITE sip:room@127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n"
        b"From: <sip:mallory@127.0.0.1>;tag=1\r\nTo: <sip:room@127.0.0.1>\r\n"
        b"P-Asserted-Identity: <sip:dora@127.0.0.1>\r\n"
        b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:m@x.invalid;transport=ws>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    request = parse_message(data)
    return RequestReceived(request, source, "k1")  # type: ignore[arg-type]


def _focus() -> FocusService:
    class NoStore:
        def get_conference(self, name: str) -> None:
            return None

    media: Any = None
    return FocusService(NoStore(), media, FocusConfig(trusted_proxies=frozenset({PROXY})))


def test_over_websocket_the_session_identity_is_admitted_not_from_or_pai() -> None:
    flows: Any = Flows({FLOW: SipWebSocketBinding("sip:alice@127.0.0.1")})
    identity = _focus().identify(flows, _event(FLOW), "room")
    assert not isinstance(identity, SipRefusal)
    assert identity.aor == "sip:alice@127.0.0.1" and identity.source is IdentitySource.SESSION
    assert not identity.anonymous
    assert not_listed(identity) == "the identity of the web session is not on the authorized list"


def test_a_websocket_from_the_trusted_proxy_address_still_uses_the_session() -> None:
    flow = SipAddress("ws", PROXY, 50001)
    flows: Any = Flows({flow: SipWebSocketBinding("sip:alice@127.0.0.1")})
    identity = _focus().identify(flows, _event(flow), "room")
    assert not isinstance(identity, SipRefusal) and identity.aor == "sip:alice@127.0.0.1"


def test_an_invite_flow_reaches_its_own_conference_only() -> None:
    binding = SipWebSocketBinding("sip:carol@127.0.0.1", conference="room", invite_id=3)
    flows: Any = Flows({FLOW: binding})
    assert not isinstance(_focus().identify(flows, _event(FLOW), "room"), SipRefusal)
    other = _focus().identify(flows, _event(FLOW), "board")
    assert isinstance(other, SipRefusal) and other.status == 403
    assert other.warning == "an invite link admits to its own conference only"


def test_a_websocket_flow_without_a_binding_is_refused() -> None:
    refused = _focus().identify(Flows({}), _event(FLOW), "room")  # type: ignore[arg-type]
    assert isinstance(refused, SipRefusal) and refused.status == 403


def test_over_udp_from_and_pai_rules_are_unchanged() -> None:
    focus, flows = _focus(), Flows({})
    plain = focus.identify(flows, _event(SipAddress("udp", "127.0.0.1", 5070)), "room")  # type: ignore[arg-type]
    assert not isinstance(plain, SipRefusal) and plain.aor == "sip:mallory@127.0.0.1"
    proxied = focus.identify(flows, _event(SipAddress("udp", PROXY, 5060)), "room")  # type: ignore[arg-type]
    assert not isinstance(proxied, SipRefusal) and proxied.aor == "sip:dora@127.0.0.1"
