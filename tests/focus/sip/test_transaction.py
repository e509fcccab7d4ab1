"""RFC 3261 §17 transactions: two layers wired in memory with an explicit ``now``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus.sip.message import (
    SipHeaders,
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
    SipTimerConfig,
    SipTransactionEvent,
    SipTransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    new_branch,
)

ALICE = SipAddress("udp", "192.0.2.1", 5060)
BOB = SipAddress("udp", "192.0.2.2", 5060)


def request(
    method: str = "INVITE",
    *,
    transport: str = "UDP",
    sent_by: str = "192.0.2.1:5060",
    branch: str | None = None,
    rport: bool = False,
    cseq: int = 1,
) -> SipRequest:
    via = f"SIP/2.0/{transport} {sent_by};branch={branch or new_branch()}"
    headers = SipHeaders(
        [
            ("Via", via + (";rport" if rport else "")),
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@example.com>;tag=a1"),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", "call-1@example.com"),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", "<sip:alice@192.0.2.1>"),
        ]
    )
    return SipRequest(method, "sip:bob@example.com", headers)


def sent(layer: SipTransactionLayer) -> list[tuple[SipRequest | SipResponse, SipAddress]]:
    """Drain the layer's output, re-parsed from bytes as the peer would see it."""
    return [(parse_message(bytes(msg)), dest) for msg, dest in layer.datagrams_to_send()]


def events(layer: SipTransactionLayer) -> list[SipTransactionEvent]:
    out = []
    while (event := layer.next_event()) is not None:
        out.append(event)
    return out


def deliver(
    src: SipTransactionLayer, dst: SipTransactionLayer, source: SipAddress, now: float
) -> int:
    """Move everything ``src`` sent into ``dst``; return the message count."""
    messages = sent(src)
    for message, _ in messages:
        dst.receive(message, source, now)
    return len(messages)


def fire_all(layer: SipTransactionLayer, until: float = 1000.0) -> list[tuple[float, int]]:
    """Fire timers in order; return (time, messages sent) per firing."""
    firings = []
    while (when := layer.get_timer()) is not None and when <= until:
        layer.handle_timer(when)
        firings.append((when, len(layer.datagrams_to_send())))
    return firings


def server_invite(
    now: float = 0.0, **kwargs: object
) -> tuple[SipTransactionLayer, SipRequest, str]:
    server = SipTransactionLayer()
    invite = request("INVITE", **kwargs)  # type: ignore[arg-type]
    server.receive(parse_message(bytes(invite)), ALICE, now)
    (event,) = events(server)
    assert isinstance(event, RequestReceived)
    return server, event.request, event.key


def test_timer_a_doubles_and_timer_b_fires_at_64_t1() -> None:
    client = SipTransactionLayer()
    key = client.send_request(request(), BOB, 0.0)
    assert len(client.datagrams_to_send()) == 1
    firings = fire_all(client)
    retransmits = [when for when, count in firings if count == 1]
    assert retransmits == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A: T1, 2T1, 4T1, ...
    assert firings[-1] == (32.0, 0)  # B = 64*T1
    assert events(client) == [TransactionTimedOut(key), TransactionTerminated(key)]
    assert len(client) == 0


def test_timer_e_is_capped_at_t2_and_timer_f_fires() -> None:
    client = SipTransactionLayer()
    key = client.send_request(request("OPTIONS"), BOB, 0.0)
    client.datagrams_to_send()
    firings = fire_all(client)
    retransmits = [when for when, count in firings if count]
    assert retransmits == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert firings[-1] == (32.0, 0)
    assert events(client) == [TransactionTimedOut(key), TransactionTerminated(key)]


def test_timer_e_uses_t2_once_proceeding() -> None:
    client, server = SipTransactionLayer(), SipTransactionLayer()
    key = client.send_request(request("OPTIONS"), BOB, 0.0)
    deliver(client, server, ALICE, 0.0)
    (received,) = events(server)
    assert isinstance(received, RequestReceived)
    server.send_response(make_response(received.request, 180), 0.1, key=received.key)
    deliver(server, client, BOB, 0.1)
    assert [type(e) for e in events(client)] == [ResponseReceived]
    client.handle_timer(0.5)  # first E, already scheduled at T1
    assert len(client.datagrams_to_send()) == 1
    assert client.get_timer() == 4.5  # then T2
    client.handle_timer(4.5)
    assert len(client.datagrams_to_send()) == 1 and client.get_timer() == 8.5
    assert len(client) == 1 and client.peer(key) == BOB


def test_no_retransmissions_over_tcp() -> None:
    client = SipTransactionLayer()
    dest = SipAddress("tcp", "192.0.2.2", 5060)
    key = client.send_request(request(transport="TCP"), dest, 0.0)
    assert len(client.datagrams_to_send()) == 1
    assert client.get_timer() == 32.0  # only timer B
    assert fire_all(client) == [(32.0, 0)]
    assert events(client) == [TransactionTimedOut(key), TransactionTerminated(key)]


def test_invite_2xx_flow_with_accepted_states() -> None:
    client, server = SipTransactionLayer(), SipTransactionLayer()
    key = client.send_request(request(), BOB, 0.0)
    deliver(client, server, ALICE, 0.0)
    (received,) = events(server)
    assert isinstance(received, RequestReceived)
    ringing = make_response(received.request, 180, to_tag="b1")
    ok = make_response(received.request, 200, to_tag="b1")
    server.send_response(ringing, 0.05, key=received.key)
    server.send_response(ok, 0.1, key=received.key)
    assert deliver(server, client, BOB, 0.1) == 2
    got = events(client)
    assert [e.response.status for e in got if isinstance(e, ResponseReceived)] == [180, 200]
    assert fire_all(client, until=1.0) == []  # Accepted: no more timer A
    server.send_response(ok, 0.6, key=received.key)  # the TU retransmits its 2xx
    deliver(server, client, BOB, 0.6)
    assert [e.response.status for e in events(client) if isinstance(e, ResponseReceived)] == [200]
    assert client.get_timer() == pytest.approx(32.1)  # timer M = 64*T1 after the 2xx
    client.handle_timer(32.1)
    assert events(client) == [TransactionTerminated(key)]
    server.handle_timer(32.1)  # timer L
    assert events(server) == [TransactionTerminated(received.key)]


def test_trying_sent_when_tu_is_slow_only() -> None:
    server, invite, key = server_invite()
    assert server.get_timer() == 0.2
    server.handle_timer(0.2)
    ((trying, dest),) = sent(server)
    assert isinstance(trying, SipResponse) and trying.status == 100 and dest == ALICE
    fast, invite2, key2 = server_invite()
    fast.send_response(make_response(invite2, 180, to_tag="x"), 0.1, key=key2)
    fast.datagrams_to_send()
    fast.handle_timer(0.2)
    assert fast.datagrams_to_send() == []


def test_non_2xx_is_acked_by_client_and_absorbed_by_server() -> None:
    client, server = SipTransactionLayer(), SipTransactionLayer()
    invite = request()
    key = client.send_request(invite, BOB, 0.0)
    deliver(client, server, ALICE, 0.0)
    (received,) = events(server)
    assert isinstance(received, RequestReceived)
    server.send_response(make_response(received.request, 486, to_tag="b2"), 0.1, key=received.key)
    deliver(server, client, BOB, 0.1)
    ((ack, dest),) = sent(client)
    assert isinstance(ack, SipRequest) and ack.method == "ACK" and dest == BOB
    assert ack.cseq == (1, "ACK") and ack.to_addr.tag == "b2"
    assert ack.vias[0].branch == invite.vias[0].branch and ack.uri == invite.uri
    assert [e.response.status for e in events(client) if isinstance(e, ResponseReceived)] == [486]
    server.receive(ack, ALICE, 0.2)
    assert events(server) == []  # absorbed: not an AckReceived
    assert server.get_timer() == pytest.approx(5.2)  # timer I = T4, G and H stopped
    server.handle_timer(5.2)
    assert events(server) == [TransactionTerminated(received.key)]
    client.handle_timer(32.1)  # timer D
    assert events(client) == [TransactionTerminated(key)]


def test_retransmitted_final_is_reacked_in_completed() -> None:
    client = SipTransactionLayer()
    invite = request()
    client.send_request(invite, BOB, 0.0)
    client.datagrams_to_send()
    busy = make_response(invite, 486, to_tag="b")
    client.receive(parse_message(bytes(busy)), BOB, 0.1)
    client.receive(parse_message(bytes(busy)), BOB, 0.2)
    acks = sent(client)
    assert [m.method for m, _ in acks] == ["ACK", "ACK"]  # type: ignore[union-attr]
    assert len([e for e in events(client) if isinstance(e, ResponseReceived)]) == 1


def test_timer_g_retransmits_final_and_timer_h_times_out() -> None:
    server, invite, key = server_invite()
    server.send_response(make_response(invite, 404, to_tag="t"), 0.0, key=key)
    server.datagrams_to_send()
    firings = fire_all(server)
    assert [when for when, count in firings if count] == [
        0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5,
    ]  # fmt: skip
    assert firings[-1] == (32.0, 0)
    assert events(server) == [TransactionTimedOut(key), TransactionTerminated(key)]


def test_retransmitted_requests_are_absorbed() -> None:
    server, invite, key = server_invite()
    server.receive(parse_message(bytes(invite)), ALICE, 0.05)
    assert events(server) == [] and server.datagrams_to_send() == []
    server.send_response(make_response(invite, 180, to_tag="t"), 0.1, key=key)
    server.datagrams_to_send()
    server.receive(parse_message(bytes(invite)), ALICE, 0.3)
    ((again, _),) = sent(server)
    assert isinstance(again, SipResponse) and again.status == 180
    options = request("OPTIONS")
    server.receive(parse_message(bytes(options)), ALICE, 1.0)
    (event,) = events(server)
    assert isinstance(event, RequestReceived)
    server.receive(parse_message(bytes(options)), ALICE, 1.1)
    assert server.datagrams_to_send() == []  # Trying: absorbed silently
    server.send_response(make_response(event.request, 200, to_tag="o"), 1.2, key=event.key)
    server.datagrams_to_send()
    server.receive(parse_message(bytes(options)), ALICE, 1.3)
    ((final, _),) = sent(server)
    assert isinstance(final, SipResponse) and final.status == 200
    assert server.get_timer() is not None
    server.handle_timer(1.2 + 32)  # timer J
    assert TransactionTerminated(event.key) in events(server)


def test_cancel_matches_invite_and_is_answered() -> None:
    branch = new_branch()
    server, invite, key = server_invite(branch=branch)
    server.send_response(make_response(invite, 180, to_tag="tt"), 0.05, key=key)
    server.datagrams_to_send()
    server.receive(parse_message(bytes(request("CANCEL", branch=branch))), ALICE, 0.1)
    ((answer, _),) = sent(server)
    assert isinstance(answer, SipResponse) and answer.status == 200
    assert answer.to_addr.tag == "tt" and answer.cseq == (1, "CANCEL")
    (event,) = events(server)
    assert isinstance(event, CancelReceived) and event.invite_key == key
    server.send_response(make_response(invite, 487, to_tag="tt"), 0.2, key=key)
    ((terminated, _),) = sent(server)
    assert terminated.status == 487  # type: ignore[union-attr]


def test_cancel_without_invite_gets_481() -> None:
    server = SipTransactionLayer()
    server.receive(parse_message(bytes(request("CANCEL"))), ALICE, 0.0)
    ((answer, _),) = sent(server)
    assert answer.status == 481  # type: ignore[union-attr]
    assert events(server) == []


def test_ack_for_2xx_goes_to_tu() -> None:
    server, invite, key = server_invite()
    server.send_response(make_response(invite, 200, to_tag="t"), 0.1, key=key)
    server.datagrams_to_send()
    ack = request("ACK")  # new branch (§13.2.2.4)
    server.receive(parse_message(bytes(ack)), ALICE, 0.2)
    (event,) = events(server)
    assert isinstance(event, AckReceived) and event.source == ALICE


def test_received_and_rport_are_filled() -> None:
    source = SipAddress("udp", "198.51.100.7", 40000)
    server = SipTransactionLayer()
    server.receive(parse_message(bytes(request(sent_by="10.0.0.1:5060", rport=True))), source, 0)
    (event,) = events(server)
    assert isinstance(event, RequestReceived)
    via = event.request.vias[0]
    assert via.received == "198.51.100.7" and via.rport == "40000"
    assert server.peer(event.key) == source
    server.send_response(make_response(event.request, 200, to_tag="x"), 0.1, key=event.key)
    ((response, dest),) = sent(server)
    assert dest == source
    assert response.vias[0].received == "198.51.100.7" and response.vias[0].rport == "40000"


def test_received_without_rport_uses_sent_by_port() -> None:
    source = SipAddress("udp", "198.51.100.7", 40000)
    server = SipTransactionLayer()
    server.receive(parse_message(bytes(request("OPTIONS", sent_by="pc.example.com"))), source, 0)
    (event,) = events(server)
    assert isinstance(event, RequestReceived)
    assert event.request.vias[0].received == "198.51.100.7"
    assert server.peer(event.key) == SipAddress("udp", "198.51.100.7", 5060)
    same = SipTransactionLayer()
    same.receive(parse_message(bytes(request("OPTIONS"))), ALICE, 0)
    (event,) = events(same)
    assert event.request.vias[0].received is None  # type: ignore[union-attr]


def test_tcp_responses_go_back_to_the_source_connection() -> None:
    source = SipAddress("tcp", "192.0.2.1", 51000)
    server = SipTransactionLayer()
    server.receive(parse_message(bytes(request("OPTIONS", transport="TCP"))), source, 0)
    (event,) = events(server)
    assert isinstance(event, RequestReceived)
    server.send_response(make_response(event.request, 200, to_tag="x"), 0.0, key=event.key)
    ((_, dest),) = sent(server)
    assert dest == source
    assert events(server) == [TransactionTerminated(event.key)]  # timer J = 0 on TCP


def test_rfc2543_transactions_match_without_magic_cookie() -> None:
    server = SipTransactionLayer()
    invite = request(branch="old-style-1")
    server.receive(parse_message(bytes(invite)), ALICE, 0.0)
    (event,) = events(server)
    assert isinstance(event, RequestReceived) and event.key.startswith("s2543|")
    server.receive(parse_message(bytes(invite)), ALICE, 0.1)
    assert events(server) == []
    server.send_response(make_response(event.request, 486, to_tag="z"), 0.2, key=event.key)
    server.datagrams_to_send()
    ack = request("ACK", branch="old-style-1")
    server.receive(parse_message(bytes(ack)), ALICE, 0.3)
    assert events(server) == []  # matched the INVITE transaction and absorbed


def test_overload_is_refused_with_503() -> None:
    server = SipTransactionLayer(SipTimerConfig(max_transactions=1))
    server.receive(parse_message(bytes(request("OPTIONS"))), ALICE, 0)
    server.receive(parse_message(bytes(request("OPTIONS"))), ALICE, 0)
    assert len(events(server)) == 1
    ((refusal, _),) = sent(server)
    assert refusal.status == 503 and refusal.headers.get("Retry-After") == "5"  # type: ignore[union-attr]
    assert server.stats["refused"] == 1


def test_bad_request_is_answered_400_and_bad_response_dropped() -> None:
    bad = request("OPTIONS")
    bad.headers.set("CSeq", "x OPTIONS")
    server = SipTransactionLayer()
    server.receive(parse_message(bytes(bad)), ALICE, 0)
    ((answer, dest),) = sent(server)
    assert answer.status == 400 and dest == ALICE  # type: ignore[union-attr]
    assert events(server) == []
    stray = make_response(request("OPTIONS"), 200)
    server.receive(parse_message(bytes(stray)), BOB, 0)
    assert server.stats["stray_responses"] == 1 and sent(server) == []


def test_response_with_two_vias_is_discarded() -> None:
    client = SipTransactionLayer()
    options = request("OPTIONS")
    client.send_request(options, BOB, 0)
    client.datagrams_to_send()
    response = make_response(options, 200)
    response.headers.add("Via", "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKother")
    client.receive(parse_message(bytes(response)), BOB, 0.1)
    assert events(client) == []


def test_local_misuse_raises() -> None:
    client = SipTransactionLayer()
    with pytest.raises(SipLocalError):
        client.send_request(request("ACK"), BOB, 0)
    with pytest.raises(SipLocalError):
        client.send_request(request(branch="nocookie"), BOB, 0)
    server, invite, key = server_invite()
    server.send_response(make_response(invite, 486, to_tag="t"), 0, key=key)
    with pytest.raises(SipLocalError):
        server.send_response(make_response(invite, 200, to_tag="t"), 0, key=key)
    with pytest.raises(SipLocalError):
        server.send_response(make_response(request("OPTIONS"), 200), 0)


def test_send_response_finds_transaction_by_via() -> None:
    server = SipTransactionLayer()
    server.receive(parse_message(bytes(request("OPTIONS"))), ALICE, 0)
    (event,) = events(server)
    assert isinstance(event, RequestReceived)
    server.send_response(make_response(event.request, 200, to_tag="v"), 0.0)
    assert len(server.datagrams_to_send()) == 1


def test_transport_error_terminates_client_transaction() -> None:
    client = SipTransactionLayer()
    key = client.send_request(request("OPTIONS"), BOB, 0)
    client.transport_error(key)
    assert events(client) == [TransportFailed(key), TransactionTerminated(key)]
    assert client.get_timer() is None


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0),
    st.binary(max_size=8),
    st.sampled_from(["INVITE", "OPTIONS", "ACK", "CANCEL"]),
)
def test_mutated_requests_never_escape_the_layer(position: int, junk: bytes, method: str) -> None:
    """Property: any parseable mutation of a request is absorbed, answered or dropped."""
    data = bytearray(bytes(request(method)))
    position %= len(data)
    data[position : position + len(junk)] = junk
    try:
        message = parse_message(bytes(data))
    except SipRemoteError:
        return
    layer = SipTransactionLayer()
    layer.receive(message, ALICE, 0.0)
    for answer, _ in layer.datagrams_to_send():
        parse_message(bytes(answer))  # whatever we send is well-formed
    events(layer)
