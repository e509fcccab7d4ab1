"""RFC 4475 torture messages: what the parser and ``validate_request`` make of each.

The vectors are in ``tests/vectors/sip`` (see ``SOURCES.md`` there).
"""

from pathlib import Path

import pytest

from focus.sip.headers import SipRemoteError
from focus.sip.message import SipRequest, SipResponse, parse_message, validate_request

VECTORS = Path(__file__).parents[2] / "vectors" / "sip"
UAS_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "MESSAGE"})

# name -> (RFC 4475 section, stage that refuses it, status).  "parse" means
# parse_message raises; "validate" means validate_request (as a UAS allowing
# UAS_METHODS, supporting no extensions and accepting application/sdp) raises;
# "accept" means both pass and higher layers decide (see SOURCES.md).
EXPECTATIONS: dict[str, tuple[str, str, int]] = {
    "wsinv": ("3.1.1.1", "accept", 0),
    "intmeth": ("3.1.1.2", "validate", 501),  # endpoints answer 501 (unknown method)
    "esc01": ("3.1.1.3", "accept", 0),
    "escnull": ("3.1.1.4", "accept", 0),
    "esc02": ("3.1.1.5", "validate", 501),  # RE%47IST%45R is not REGISTER
    "lwsdisp": ("3.1.1.6", "accept", 0),
    "longreq": ("3.1.1.7", "accept", 0),
    "dblreq": ("3.1.1.8", "accept", 0),
    "semiuri": ("3.1.1.9", "accept", 0),
    "transports": ("3.1.1.10", "accept", 0),
    "badinv01": ("3.1.2.1", "validate", 400),
    "clerr": ("3.1.2.2", "parse", 400),
    "ncl": ("3.1.2.3", "parse", 400),
    "scalar02": ("3.1.2.4", "validate", 400),
    "quotbal": ("3.1.2.6", "validate", 400),
    "ltgtruri": ("3.1.2.7", "parse", 400),
    "lwsruri": ("3.1.2.8", "parse", 400),
    "lwsstart": ("3.1.2.9", "parse", 400),
    "trws": ("3.1.2.10", "parse", 400),
    "escruri": ("3.1.2.11", "validate", 400),
    "baddate": ("3.1.2.12", "accept", 0),  # only reject if Date mattered
    "regbadct": ("3.1.2.13", "validate", 400),
    "badaspec": ("3.1.2.14", "validate", 400),
    "baddn": ("3.1.2.15", "validate", 400),
    "badvers": ("3.1.2.16", "parse", 505),
    "mismatch01": ("3.1.2.17", "validate", 400),
    "mismatch02": ("3.1.2.18", "validate", 501),
    "badbranch": ("3.2.1", "validate", 400),
    "insuf": ("3.3.1", "validate", 400),
    "unkscm": ("3.3.2", "validate", 416),
    "novelsc": ("3.3.3", "validate", 416),
    "unksm2": ("3.3.4", "validate", 400),
    "bext01": ("3.3.5", "validate", 420),
    "invut": ("3.3.6", "validate", 415),
    "regaut01": ("3.3.7", "accept", 0),  # registrar challenges with 401
    "multi01": ("3.3.8", "validate", 400),
    "mcl01": ("3.3.9", "parse", 400),
    "zeromf": ("3.3.11", "accept", 0),  # a UAS answers OPTIONS normally
    "cparam01": ("3.3.12", "accept", 0),
    "cparam02": ("3.3.13", "accept", 0),
    "regescrt": ("3.3.14", "accept", 0),
    "sdp01": ("3.3.15", "accept", 0),  # offer/answer layer: 406 or 400
    "inv2543": ("3.4.1", "accept", 0),  # RFC 2543 request, processed
}
RESPONSES = {
    "unreason": "3.1.1.12",
    "noreason": "3.1.1.13",
    "scalarlg": "3.1.2.5",
    "bcast": "3.3.10",
}
BAD_RESPONSES = {"bigcode": "3.1.2.19"}  # parse_message refuses it (400); the receiver drops it


def load(name: str) -> bytes:
    return (VECTORS / f"{name}.txt").read_bytes()


def uas_validate(request: SipRequest) -> None:
    validate_request(
        request, allowed_methods=UAS_METHODS, accepted_content_types={"application/sdp"}
    )


def test_every_vector_is_tabulated() -> None:
    names = {path.stem for path in VECTORS.glob("*.txt")}
    assert names == set(EXPECTATIONS) | set(RESPONSES) | set(BAD_RESPONSES)


def test_bigcode_is_refused() -> None:
    with pytest.raises(SipRemoteError) as info:
        parse_message(load("bigcode"))
    assert info.value.status == 400


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_torture_request(name: str) -> None:
    _, stage, status = EXPECTATIONS[name]
    data = load(name)
    if stage == "parse":
        with pytest.raises(SipRemoteError) as info:
            parse_message(data)
        assert info.value.status == status
        return
    request = parse_message(data)
    assert isinstance(request, SipRequest)
    if stage == "validate":
        with pytest.raises(SipRemoteError) as info:
            uas_validate(request)
        assert info.value.status == status
    else:
        uas_validate(request)


def test_mismatch02_without_a_method_list_is_400() -> None:
    request = parse_message(load("mismatch02"))
    assert isinstance(request, SipRequest)
    with pytest.raises(SipRemoteError) as info:
        validate_request(request)
    assert info.value.status == 400


def test_refusals_carry_the_headers_to_answer_with() -> None:
    bext = parse_message(load("bext01"))
    assert isinstance(bext, SipRequest)
    with pytest.raises(SipRemoteError) as info:
        validate_request(bext)
    assert info.value.headers == (
        ("Unsupported", "nothingSupportsThis, nothingSupportsThisEither"),
    )
    validate_request(bext, supported={"nothingSupportsThis", "nothingSupportsThisEither"})
    esc02 = parse_message(load("esc02"))
    assert isinstance(esc02, SipRequest)
    with pytest.raises(SipRemoteError) as info:
        uas_validate(esc02)
    assert info.value.headers[0][0] == "Allow"
    with pytest.raises(SipRemoteError) as info:
        parse_message(load("badvers"))
    assert isinstance(info.value.message, SipRequest)


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_torture_responses_parse(name: str) -> None:
    response = parse_message(load(name))
    assert isinstance(response, SipResponse)
    assert bytes(response) == load(name)


def test_scalarlg_cseq_is_refused_and_bcast_has_two_vias() -> None:
    with pytest.raises(SipRemoteError):
        _ = parse_message(load("scalarlg")).cseq
    bcast = parse_message(load("bcast"))
    assert [via.host for via in bcast.vias] == ["192.0.2.198", "255.255.255.255"]


@pytest.mark.parametrize(
    "name",
    [
        n
        for n, (_, stage, _) in EXPECTATIONS.items()
        if stage != "parse" and n not in ("dblreq", "inv2543")
    ],
)
def test_unmodified_requests_round_trip_bit_exact(name: str) -> None:
    assert bytes(parse_message(load(name))) == load(name)


def test_wsinv_semantics() -> None:
    request = parse_message(load("wsinv"))
    assert isinstance(request, SipRequest)
    assert request.request_uri.params == {"unknownparam": None}
    assert (request.to_addr.uri.user, request.to_addr.tag) == ("vivekg", "1918181833n")
    assert request.from_addr.display_name == 'J Rosenberg \\"'
    assert request.from_addr.tag == "98asjd8"
    assert request.max_forwards == 68
    assert request.cseq == (9, "INVITE")
    assert request.call_id == "wsinv.ndaksdj@192.0.2.1"
    vias = [(v.transport, v.host, v.branch) for v in request.vias]
    assert vias == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert request.headers.get("Subject") == ""
    assert request.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert request.headers.get_all("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]
    [route] = request.headers.get_all("Route")
    assert route == "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    from focus.sip.uri import SipNameAddr

    contact = SipNameAddr.parse(request.headers.get("Contact") or "")
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(request.body) == 150


def test_intmeth_semantics() -> None:
    request = parse_message(load("intmeth"))
    assert isinstance(request, SipRequest)
    assert request.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = request.request_uri
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert request.to_addr.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert request.from_addr.display_name == "token1~` token2'+_ token3*%!.-"
    assert request.from_addr.tag == "_token~1'+`*%!-."
    assert request.from_addr.params["fromparam''~+*_!.-%"] == '"работающий"'
    assert request.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert request.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert request.vias[0].branch == "z9hG4bK-.!%66*_+`'~"
    assert request.cseq == (139122385, request.method)
    validate_request(request)  # well formed; only the method is unknown to a UAS


def test_escape_vectors() -> None:
    esc01 = parse_message(load("esc01"))
    assert isinstance(esc01, SipRequest)
    assert esc01.request_uri.user == "sips:user@example.com"
    assert esc01.to_addr.uri.user == "user"
    assert esc01.from_addr.uri.user == "I have spaces"
    escnull = parse_message(load("escnull"))
    assert escnull.to_addr.uri.aor == "sip:null-%00-null@example.com"
    esc02 = parse_message(load("esc02"))
    assert esc02.to_addr.display_name == "%Z%45"
    assert len(esc02.headers.get_all("Contact")) == 2
    assert esc02.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_other_valid_vectors() -> None:
    assert parse_message(load("lwsdisp")).from_addr.display_name == "caller"
    longreq = parse_message(load("longreq"))
    assert len(longreq.vias) == 34
    assert longreq.vias[-1].received == "192.0.2.5"
    assert longreq.to_addr.uri.port == 6000
    dblreq = parse_message(load("dblreq"))
    assert isinstance(dblreq, SipRequest) and dblreq.method == "REGISTER" and dblreq.body == b""
    semiuri = parse_message(load("semiuri"))
    assert isinstance(semiuri, SipRequest)
    assert semiuri.request_uri.user == "user;par=u@example.net"
    assert len(semiuri.headers.get_all("Accept")) == 6
    transports = [v.transport for v in parse_message(load("transports")).vias]
    assert transports == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    unreason = parse_message(load("unreason"))
    assert isinstance(unreason, SipResponse)
    assert unreason.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    noreason = parse_message(load("noreason"))
    assert isinstance(noreason, SipResponse) and noreason.reason == ""
