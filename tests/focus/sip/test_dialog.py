"""RFC 3261 §12 dialogs: creation on both sides, in-dialog requests, CSeq, 2xx retransmission."""

from __future__ import annotations

import pytest

from focus.sip.dialog import (
    AckTimedOut,
    SipAckWaiters,
    SipDialog,
    SipDialogState,
    dialog_from_uac,
    dialog_from_uas,
    incoming_dialog_id,
    uri_address,
)
from focus.sip.message import (
    SipHeaders,
    SipLocalError,
    SipRemoteError,
    SipRequest,
    SipResponse,
    make_response,
    parse_message,
)
from focus.sip.transaction import SipAddress
from focus.sip.uri import SipUri


def invite(*record_route: str) -> SipRequest:
    headers = SipHeaders(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"),
            *[("Record-Route", rr) for rr in record_route],
            ("Max-Forwards", "70"),
            ("From", "Alice <sip:alice@example.com>;tag=alice-tag"),
            ("To", "<sip:conf@example.org>"),
            ("Call-ID", "dlg-1@example.com"),
            ("CSeq", "10 INVITE"),
            ("Contact", "<sip:alice@192.0.2.1:5060>"),
        ]
    )
    return parse_message(bytes(SipRequest("INVITE", "sip:conf@example.org", headers)))  # type: ignore[return-value]


def answer(request: SipRequest, status: int = 200) -> SipResponse:
    response = make_response(request, status, to_tag="focus-tag")
    for rr in request.headers.get_all("Record-Route"):
        response.headers.add("Record-Route", rr)
    response.headers.add("Contact", "<sip:conf@192.0.2.2:5060>")
    return parse_message(bytes(response))  # type: ignore[return-value]


def uas_dialog(*record_route: str) -> tuple[SipDialog, SipRequest, SipResponse]:
    request = invite(*record_route)
    response = answer(request)
    return dialog_from_uas(request, response), request, response


def test_uas_dialog_state() -> None:
    dialog, request, _ = uas_dialog("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")
    assert dialog.id == ("dlg-1@example.com", "focus-tag", "alice-tag")
    bye_headers = request.headers.copy()
    bye_headers.set("To", "<sip:conf@example.org>;tag=focus-tag")
    assert dialog.id == incoming_dialog_id(SipRequest("BYE", "sip:x@y", bye_headers))
    assert dialog.remote_target == "sip:alice@192.0.2.1:5060"
    assert dialog.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert dialog.remote_cseq == 10 and dialog.is_uas
    assert dialog.state is SipDialogState.CONFIRMED
    assert dialog.local_target == "sip:conf@192.0.2.2:5060"


def test_uac_dialog_reverses_route_set_and_builds_bye() -> None:
    request = invite("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")
    dialog = dialog_from_uac(request, answer(request))
    assert dialog.id == ("dlg-1@example.com", "alice-tag", "focus-tag")
    assert dialog.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    bye = dialog.create_request("BYE", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbye")
    assert bye.uri == "sip:conf@192.0.2.2:5060"
    assert bye.headers.get_all("Route") == dialog.route_set
    assert bye.cseq == (11, "BYE") and bye.call_id == "dlg-1@example.com"
    assert bye.from_addr.tag == "alice-tag" and bye.to_addr.tag == "focus-tag"
    assert dialog.next_hop() == SipUri.parse("sip:p2.example.com;lr")
    parse_message(bytes(bye))  # well-formed on the wire


def test_uas_requests_count_up_from_its_own_cseq() -> None:
    dialog, _, _ = uas_dialog()
    notify = dialog.create_request(
        "NOTIFY", headers=[("Event", "conference")], body=b"<x/>", content_type="application/xml"
    )
    refer = dialog.create_request("REFER")
    assert notify.cseq[0] + 1 == refer.cseq[0]
    assert notify.headers.get("Contact") == "<sip:conf@192.0.2.2:5060>"
    assert notify.headers.get("Content-Type") == "application/xml" and notify.body == b"<x/>"
    assert notify.uri == "sip:alice@192.0.2.1:5060" and "Route" not in notify.headers
    assert notify.from_addr.tag == "focus-tag" and notify.to_addr.tag == "alice-tag"
    assert "Contact" not in dialog.create_request("BYE").headers


def test_strict_router_first_hop() -> None:
    dialog, _, _ = uas_dialog("<sip:strict.example.com>", "<sip:p2.example.com;lr>")
    bye = dialog.create_request("BYE")
    assert bye.uri == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == [
        "<sip:p2.example.com;lr>",
        "<sip:alice@192.0.2.1:5060>",
    ]


def test_incoming_cseq_rules() -> None:
    dialog, request, _ = uas_dialog()
    bye_headers = request.headers.copy()
    bye_headers.set("To", "<sip:conf@example.org>;tag=focus-tag")
    bye_headers.set("CSeq", "9 BYE")
    old = SipRequest("BYE", "sip:conf@192.0.2.2", bye_headers)
    with pytest.raises(SipRemoteError) as info:
        dialog.receive_request(old)
    assert info.value.status == 500
    newer = SipRequest("BYE", "sip:conf@192.0.2.2", bye_headers.copy())
    newer.headers.set("CSeq", "11 BYE")
    dialog.receive_request(newer)
    assert dialog.remote_cseq == 11
    ack = SipRequest("ACK", "sip:conf@192.0.2.2", bye_headers.copy())
    ack.headers.set("CSeq", "10 ACK")
    dialog.receive_request(ack)  # ACK reuses the INVITE's number
    assert dialog.remote_cseq == 11
    other = SipRequest("BYE", "sip:conf@192.0.2.2", bye_headers.copy())
    other.headers.set("To", "<sip:conf@example.org>;tag=nope")
    with pytest.raises(SipRemoteError) as info:
        dialog.receive_request(other)
    assert info.value.status == 481


def test_reinvite_refreshes_remote_target() -> None:
    dialog, request, _ = uas_dialog()
    headers = request.headers.copy()
    headers.set("To", "<sip:conf@example.org>;tag=focus-tag")
    headers.set("CSeq", "12 INVITE")
    headers.set("Contact", "<sip:alice@198.51.100.1:5070>")
    dialog.receive_request(SipRequest("INVITE", "sip:conf@192.0.2.2", headers))
    assert dialog.remote_target == "sip:alice@198.51.100.1:5070"


def test_uac_early_dialog_confirmed_by_2xx_and_ack() -> None:
    request = invite("<sip:p1.example.com;lr>")
    early = answer(request, 180)
    dialog = dialog_from_uac(request, early)
    assert dialog.state is SipDialogState.EARLY
    ok = answer(request, 200)
    dialog.receive_response(ok)
    assert dialog.state is SipDialogState.CONFIRMED
    ack = dialog.create_ack(ok)
    assert ack.method == "ACK" and ack.cseq == (10, "ACK")
    assert ack.headers.get_all("Route") == ["<sip:p1.example.com;lr>"]
    with pytest.raises(SipLocalError):
        dialog.create_ack(answer(request, 180))
    with pytest.raises(SipLocalError):
        dialog.create_request("ACK")


def test_2xx_retransmission_schedule_until_ack() -> None:
    dialog, request, response = uas_dialog()
    dialog.start_2xx_retransmission(response, 100.0)
    times = []
    while (when := dialog.get_timer()) is not None:
        result = dialog.handle_timer(when)
        if isinstance(result, AckTimedOut):
            times.append(("gave up", when - 100.0))
        else:
            assert result is response
            times.append(("resent", when - 100.0))
    resent = [t for kind, t in times if kind == "resent"]
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert times[-1] == ("gave up", 32.0)


def test_ack_stops_2xx_retransmission() -> None:
    dialog, request, response = uas_dialog()
    dialog.start_2xx_retransmission(response, 0.0)
    assert dialog.handle_timer(0.4) is None
    wrong = SipRequest("ACK", "sip:conf@192.0.2.2", request.headers.copy())
    wrong.headers.set("CSeq", "9 ACK")
    assert not dialog.ack_received(wrong)
    ack = SipRequest("ACK", "sip:conf@192.0.2.2", request.headers.copy())
    ack.headers.set("CSeq", "10 ACK")
    assert dialog.ack_received(ack)
    assert dialog.get_timer() is None and not dialog.awaiting_ack


def test_dialog_needs_tags_and_contact() -> None:
    request = invite()
    untagged = make_response(request, 200)
    with pytest.raises(SipLocalError):
        dialog_from_uas(request, untagged)
    no_contact = invite()
    no_contact.headers.remove("Contact")
    with pytest.raises(SipRemoteError):
        dialog_from_uas(no_contact, answer(request))
    with pytest.raises(SipLocalError):
        dialog_from_uas(request, answer(request, 486))
    dialog, _, _ = uas_dialog()
    dialog.terminate()
    with pytest.raises(SipLocalError):
        dialog.create_request("BYE")


def test_uri_address() -> None:
    assert uri_address(SipUri.parse("sip:a@192.0.2.1")) == SipAddress("udp", "192.0.2.1", 5060)
    assert uri_address(SipUri.parse("sip:a@h;transport=TCP")) == SipAddress("tcp", "h", 5060)
    assert uri_address(SipUri.parse("sips:a@h")) == SipAddress("tls", "h", 5061)
    assert uri_address(SipUri.parse("sip:h:5070;maddr=192.0.2.9")).host == "192.0.2.9"


def test_ack_waiters_merge_timers_of_many_dialogs() -> None:
    waiters = SipAckWaiters()
    dest = SipAddress("udp", "192.0.2.1", 5060)
    first, request, response = uas_dialog()
    waiters.add(first, response, dest, 0.0)
    other_request = invite()
    other_request.headers.set("Call-ID", "dlg-2@example.com")
    other_response = answer(other_request)
    second = dialog_from_uas(other_request, other_response)
    waiters.add(second, other_response, dest, 0.2)
    assert len(waiters) == 2 and waiters.get_timer() == 0.5
    assert waiters.handle_timer(0.5) == [(response, dest)]
    assert waiters.get_timer() == pytest.approx(0.7)
    ack = SipRequest("ACK", "sip:conf@192.0.2.2", request.headers.copy())
    ack.headers.set("To", "<sip:conf@example.org>;tag=focus-tag")
    ack.headers.set("CSeq", "10 ACK")
    assert waiters.ack_received(ack) and not waiters.ack_received(ack)
    assert len(waiters) == 1
    results = waiters.handle_timer(40.0)
    assert results[-1] == AckTimedOut(second) and len(waiters) == 0
    assert waiters.get_timer() is None


# -- the dialog's flow (who may send in-dialog requests) ------------------------------

UE = SipAddress("udp", "192.0.2.1", 5060)
PROXY = "192.0.2.9"


def test_only_the_flow_the_dialog_was_made_on_is_accepted() -> None:
    request = invite()
    dialog = dialog_from_uas(request, answer(request), flow=UE)
    assert dialog.accepts_from(UE)
    assert not dialog.accepts_from(SipAddress("udp", "192.0.2.1", 5062))  # another socket
    assert not dialog.accepts_from(SipAddress("tcp", "192.0.2.1", 5060))  # another transport
    assert not dialog.accepts_from(SipAddress("udp", "192.0.2.66", 5060))  # another host
    # a trusted proxy vouches only for dialogs it is on: not this direct one
    assert not dialog.accepts_from(SipAddress("udp", PROXY, 5060), {PROXY})


def test_a_tcp_or_tls_flow_is_the_connection() -> None:
    """Named by the remote address and ephemeral port: a second connection from the
    same host (another UE behind the same NAT, say) is another flow."""
    request = invite()
    flow = SipAddress("tls", "192.0.2.1", 49152)
    dialog = dialog_from_uas(request, answer(request), transport="tls", flow=flow)
    assert dialog.accepts_from(SipAddress("tls", "192.0.2.1", 49152))
    assert not dialog.accepts_from(SipAddress("tls", "192.0.2.1", 49153))


def test_a_trusted_proxy_on_the_route_or_as_the_flow_is_accepted() -> None:
    request = invite(f"<sip:{PROXY};lr>")
    other = SipAddress("udp", PROXY, 5070)  # the proxy's other socket or connection
    routed = dialog_from_uas(request, answer(request), flow=SipAddress("udp", "192.0.2.8", 5060))
    assert routed.accepts_from(other, {PROXY})
    assert not routed.accepts_from(other)  # not trusted: only the flow itself
    direct = dialog_from_uas(invite(), answer(invite()), flow=SipAddress("tcp", PROXY, 40000))
    assert direct.accepts_from(SipAddress("tcp", PROXY, 40001), {PROXY})
    assert not direct.accepts_from(SipAddress("tcp", "192.0.2.1", 40001), {PROXY})


def test_a_dialog_without_a_flow_accepts_nothing() -> None:
    request = invite()
    assert not dialog_from_uas(request, answer(request)).accepts_from(UE)
