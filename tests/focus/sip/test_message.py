"""SIP messages: Via, parsing, stream framing, serialisation and make_response (RFC 3261)."""

from pathlib import Path

import pytest

from focus.sip.headers import SipHeaders, SipLocalError, SipRemoteError
from focus.sip.message import (
    SipRequest,
    SipResponse,
    SipStreamParser,
    SipVia,
    make_response,
    parse_message,
)

VECTORS = Path(__file__).parents[2] / "vectors" / "sip"

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n'
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Timestamp: 54\r\n"
    b"Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def vector(name: str) -> bytes:
    return (VECTORS / f"{name}.txt").read_bytes()


def parse_request(data: bytes) -> SipRequest:
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    return message


def test_parse_request_accessors() -> None:
    request = parse_request(INVITE)
    assert (request.method, request.uri) == ("INVITE", "sip:bob@biloxi.example.com")
    assert request.request_uri.user == "bob"
    assert request.call_id == "3848276298220188511@atlanta.example.com"
    assert request.cseq == (1, "INVITE")
    assert request.max_forwards == 70
    assert request.from_addr.display_name == "Alice"
    assert request.from_addr.tag == "9fxced76sl"
    assert request.to_addr.tag is None
    assert request.content_type == "application/sdp"
    assert request.body == b"v=0\n"
    [via] = request.vias
    assert (via.transport, via.host, via.port) == ("TCP", "client.atlanta.example.com", 5060)
    assert (via.branch, via.rport, via.received) == ("z9hG4bK74bf9", "", None)
    assert bytes(request) == INVITE


def test_modified_message_is_reserialised() -> None:
    request = parse_request(INVITE)
    request.headers.set("Max-Forwards", "69")
    request.body = b"v=0\r\no=x\r\n"
    request.uri = "sip:bob@192.0.2.4"
    out = bytes(request)
    assert out.startswith(b"INVITE sip:bob@192.0.2.4 SIP/2.0\r\n")
    assert b"\r\nMax-Forwards: 69\r\n" in out
    assert b"\r\nContent-Length: 10\r\n\r\nv=0\r\no=x\r\n" in out
    assert parse_message(out).headers.get("Max-Forwards") == "69"


def test_built_messages_serialise() -> None:
    request = SipRequest("OPTIONS", "sip:x@example.com", [("Via", "SIP/2.0/UDP h;branch=z9hG4bKa")])
    assert bytes(request) == (
        b"OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    response = SipResponse(486, headers=SipHeaders())
    assert bytes(response) == b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n"
    for bad in (
        lambda: SipRequest("IN VITE", "sip:a@b"),
        lambda: SipRequest("INVITE", "<sip:a@b>"),
    ):
        with pytest.raises(SipLocalError):
            bad()
    with pytest.raises(SipLocalError):
        SipResponse(700)
    with pytest.raises(SipLocalError):
        SipResponse(200, "OK\r\nVia: x")


def test_response_parsing_and_round_trip() -> None:
    data = (
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bKx\r\n"
        b"l: 0\r\n\r\n"
    )
    response = parse_message(data)
    assert isinstance(response, SipResponse)
    assert (response.status, response.reason) == (180, "Ringing")
    assert response.vias[0].host == "2001:db8::9"
    assert response.vias[0].sent_by == "[2001:db8::9]:5070"
    assert bytes(response) == data
    lenient = parse_message(b"sip/2.0 200\r\n\r\n")
    assert isinstance(lenient, SipResponse) and lenient.reason == ""


def test_via_parse_and_serialise() -> None:
    via = SipVia.parse(
        "SIP / 2.0 / udp  host.example.com : 5062 ; branch=z9hG4bKx ;rport; received=192.0.2.1"
    )
    assert (via.transport, via.host, via.port) == ("UDP", "host.example.com", 5062)
    assert via.params == {"branch": "z9hG4bKx", "rport": "", "received": "192.0.2.1"}
    assert str(via) == "SIP/2.0/UDP host.example.com:5062;branch=z9hG4bKx;rport;received=192.0.2.1"
    assert SipVia.parse(str(via)) == via
    via.params["rport"] = "5070"
    assert via.rport == "5070"
    assert SipVia.parse("SIP/2.0/TLS [::1];branch=z9hG4bK1").sent_by == "[::1]"


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "SIP/3.0/UDP host",
        "HTTP/2.0/UDP host",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host;branch=a b",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP host:5060:7",
        "SIP/2.0/UDP user@host",
    ],
)
def test_invalid_via(text: str) -> None:
    with pytest.raises(SipRemoteError) as info:
        SipVia.parse(text)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\n folded-first: x\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\ny\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nTo: x\ry\r\n\r\n", 400),
        (b"OPTIONS sip:a@b HTTP/1.1\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.1\r\n\r\n", 505),
        (b"SIP/3.0 200 OK\r\n\r\n", 400),
        (b"SIP/2.0 099 Low\r\n\r\n", 400),
        (b"SIP/2.0 700 High\r\n\r\n", 400),
        (b"SIP/2.0 20x Bad\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nabc", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: five\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 1\r\n\r\nx", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X-A: b\r\n" * 257 + b"\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nX-A: " + b"b" * 9000 + b"\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nX-A: " + b"b" * 70000 + b"\r\n\r\n", 513),
    ],
)
def test_parse_errors(data: bytes, status: int) -> None:
    with pytest.raises(SipRemoteError) as info:
        parse_message(data)
    assert info.value.status == status


def test_error_keeps_the_readable_request_for_answering() -> None:
    with pytest.raises(SipRemoteError) as info:
        parse_message(vector("clerr"))
    assert isinstance(info.value.message, SipRequest)
    assert info.value.message.call_id == "clerr.0ha0isndaksdjweiafasdk3"


def test_datagram_body_rules() -> None:
    truncated = parse_message(b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhi there")
    assert truncated.body == b"hi"
    no_length = parse_message(b"MESSAGE sip:a@b SIP/2.0\r\n\r\nhi there")
    assert no_length.body == b"hi there"
    leading_crlf = parse_message(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n")
    assert isinstance(leading_crlf, SipRequest)


def test_accessors_raise_remote_errors() -> None:
    request = parse_request(
        b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: x\r\nCall-ID: a b\r\nMax-Forwards: -1\r\n\r\n"
    )
    for accessor in ("cseq", "call_id", "max_forwards", "from_addr", "to_addr"):
        with pytest.raises(SipRemoteError):
            getattr(request, accessor)
    assert request.vias == []
    assert parse_request(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n").max_forwards is None
    with pytest.raises(SipRemoteError):
        _ = parse_request(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 4294967296 OPTIONS\r\n\r\n").cseq


STREAM_VECTORS = [
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "semiuri",
    "transports", "unreason", "noreason", "badinv01", "scalar02", "scalarlg", "quotbal",
    "escruri", "baddate", "regbadct", "badaspec", "baddn", "mismatch01", "mismatch02",
    "badbranch", "insuf", "unkscm", "novelsc", "unksm2", "bext01", "invut", "regaut01",
    "multi01", "bcast", "zeromf", "cparam01", "cparam02", "regescrt", "sdp01",
]  # fmt: skip


@pytest.mark.parametrize("name", STREAM_VECTORS)
def test_stream_one_byte_at_a_time_matches_datagram_parse(name: str) -> None:
    data = vector(name)
    parser = SipStreamParser()
    messages = []
    for i in range(len(data)):
        messages += parser.feed(data[i : i + 1])
    [message] = messages
    assert bytes(message) == bytes(parse_message(data)) == data


def test_stream_splits_several_messages_and_skips_keepalives() -> None:
    register = bytes(parse_message(vector("dblreq")))  # the datagram's trailing junk dropped
    chunk = b"\r\n\r\n" + register + b"\r\n" + vector("wsinv") + vector("noreason") + b"\r\n\r\n"
    for step in (1, 7, len(chunk)):
        parser = SipStreamParser()
        messages = []
        for i in range(0, len(chunk), step):
            messages += parser.feed(chunk[i : i + step])
        assert [type(m).__name__ for m in messages] == ["SipRequest", "SipRequest", "SipResponse"]
        assert isinstance(messages[0], SipRequest) and messages[0].method == "REGISTER"
        assert isinstance(messages[1], SipRequest) and messages[1].method == "INVITE"
        assert len(messages[1].body) == 150
    assert SipStreamParser().feed(b"\r\n") == []


def test_stream_waits_for_a_long_body() -> None:
    parser = SipStreamParser()
    assert parser.feed(vector("clerr")) == []  # RFC 4475 §3.1.2.2: just wait on a stream


@pytest.mark.parametrize("name", ["inv2543", "ncl", "mcl01", "badvers", "lwsstart", "bigcode"])
def test_stream_framing_errors_close_the_parser(name: str) -> None:
    parser = SipStreamParser()
    with pytest.raises(SipRemoteError):
        parser.feed(vector(name))
    with pytest.raises(SipLocalError):
        parser.feed(b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n")


def test_stream_size_cap_without_buffering_beyond_it() -> None:
    parser = SipStreamParser(max_message_size=100)
    with pytest.raises(SipRemoteError) as info:
        for _ in range(200):
            parser.feed(b"X")
    assert info.value.status == 513
    big_body = SipStreamParser(max_message_size=100)
    with pytest.raises(SipRemoteError):
        big_body.feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000000\r\n\r\n")


def test_make_response_copies_rfc3261_fields() -> None:
    request = parse_request(INVITE)
    response = make_response(request, 180, to_tag="abc", headers=[("Contact", "<sip:focus@h>")])
    assert (response.status, response.reason) == (180, "Ringing")
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.to_addr.tag == "abc"
    assert response.from_addr == request.from_addr
    assert (response.call_id, response.cseq) == (request.call_id, request.cseq)
    assert response.headers.get("Contact") == "<sip:focus@h>"
    assert "Timestamp" not in response.headers
    assert parse_message(bytes(response)).headers.items()[:-1] == response.headers.items()

    trying = make_response(request, 100)
    assert trying.headers.get("Timestamp") == "54"
    assert trying.to_addr.tag is None

    ok = make_response(request, 200, "Fine", body=b"v=0\r\n", content_type="application/sdp")
    assert ok.reason == "Fine" and ok.body == b"v=0\r\n"
    assert ok.content_type == "application/sdp"
    assert b"\r\nContent-Length: 5\r\n" in bytes(ok)


def test_make_response_keeps_an_existing_to_tag() -> None:
    request = parse_request(
        INVITE.replace(b"To: Bob <sip:bob@biloxi.example.com>", b"t: <sip:b@c>;tag=old")
    )
    response = make_response(request, 200, to_tag="new")
    assert response.to_addr.tag == "old"
    assert response.headers.items()[2] == ("To", "<sip:b@c>;tag=old")
