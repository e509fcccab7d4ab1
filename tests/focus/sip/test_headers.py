"""SipHeaders and the shared header grammar (RFC 3261 §7.3, §25.1)."""

import pytest

from focus.sip.headers import (
    SipHeaders,
    SipLocalError,
    SipRemoteError,
    normalize_name,
    parse_params,
    quote_string,
    split_list,
    unfold,
    unquote_string,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("v", "Via"),
        ("I", "Call-ID"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("t", "To"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("e", "Content-Encoding"),
        ("o", "Event"),
        ("u", "Allow-Events"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("x", "Session-Expires"),
        ("y", "Identity"),
        ("a", "Accept-Contact"),
        ("cseq", "CSeq"),
        ("MaX-fOrWaRdS", "Max-Forwards"),
        ("www-authenticate", "WWW-Authenticate"),
        ("X-Custom", "X-Custom"),
    ],
)
def test_compact_and_canonical_names(name: str, expected: str) -> None:
    assert normalize_name(name) == (expected.lower(), expected)


@pytest.mark.parametrize("name", ["", "Bad Name", "Via:", "Na\x00me", "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(SipRemoteError):
        normalize_name(name)
    with pytest.raises(SipLocalError):
        SipHeaders().add(name, "x")


def test_multimap_operations() -> None:
    headers = SipHeaders([("Via", "SIP/2.0/UDP a"), ("To", "<sip:b@c>"), ("v", "SIP/2.0/TCP b")])
    assert headers.get("VIA") == "SIP/2.0/UDP a"
    assert headers.get_all("via") == ["SIP/2.0/UDP a", "SIP/2.0/TCP b"]
    assert "v" in headers and "t" in headers and "From" not in headers
    assert headers.get("From", "dflt") == "dflt"
    headers.prepend("Via", "SIP/2.0/TLS z")
    assert headers.get("Via") == "SIP/2.0/TLS z"
    headers.set("via", "SIP/2.0/UDP only")
    assert headers.items() == [("Via", "SIP/2.0/UDP only"), ("To", "<sip:b@c>")]
    headers.remove("VIA")
    headers.remove("Absent")
    assert headers.items() == [("To", "<sip:b@c>")]
    assert len(headers.copy()) == 1


def test_list_headers_are_split_but_others_are_not() -> None:
    headers = SipHeaders()
    headers.add("Contact", '"Bell, Alexander" <sip:a@b;x=1,2>, <sip:c@d>')
    headers.add("Route", "<sip:p1;lr>,<sip:p2;lr>")
    headers.add("Authorization", 'Digest username="a", realm="b"')
    headers.add("X-Unknown", ";;,,;;,;")
    assert headers.get_all("m") == ['"Bell, Alexander" <sip:a@b;x=1,2>', "<sip:c@d>"]
    assert headers.get("Route") == "<sip:p1;lr>"
    assert headers.get_all("Authorization") == ['Digest username="a", realm="b"']
    assert headers.get_all("X-Unknown") == [";;,,;;,;"]


def test_cr_lf_in_values_are_refused_locally() -> None:
    with pytest.raises(SipLocalError):
        SipHeaders().add("Subject", "x\r\nVia: injected")


def test_cache_is_cleared_on_mutation() -> None:
    headers = SipHeaders([("Subject", "a")])
    assert headers.cached("s", lambda: headers.get("Subject")) == "a"
    headers.set("Subject", "b")
    assert headers.cached("s", lambda: headers.get("Subject")) == "b"


def test_split_list_edge_cases() -> None:
    assert split_list("") == []
    assert split_list("  a  ") == ["a"]
    assert split_list("a, ,b") == ["a", "", "b"]
    assert split_list('"a\\",b", c') == ['"a\\",b"', "c"]
    with pytest.raises(SipRemoteError):
        split_list('"unterminated, x')


def test_quoted_strings() -> None:
    assert unquote_string('"J Rosenberg \\\\\\""') == ('J Rosenberg \\"', 18)
    assert unquote_string('"a\\\x00b" rest') == ("a\x00b", 6)
    assert quote_string('say "hi" \\') == '"say \\"hi\\" \\\\"'
    for bad in ('"abc', '"abc\\', '"a\\\r\n"'):
        with pytest.raises(SipRemoteError):
            unquote_string(bad)
    with pytest.raises(SipLocalError):
        quote_string("a\nb")


def test_unfold() -> None:
    assert unfold("newfangled value\r\n continued") == "newfangled value continued"
    assert unfold("a  \r\n\t\tb\r\n c") == "a b c"
    assert unfold("plain") == "plain"


def test_parse_params() -> None:
    assert parse_params(" tag = 98asjd8 ; Q=0.5;lr") == {"tag": "98asjd8", "q": "0.5", "lr": None}
    assert parse_params('x="a;b"') == {"x": '"a;b"'}
    for bad in ("", ";", "a;;b", "=v", "a=", "a=b c", 'a="x" y', "a=\u00e9"):
        with pytest.raises(SipRemoteError):
            parse_params(bad)


def test_serialize_lines_writes_one_correct_content_length() -> None:
    headers = SipHeaders([("Content-Length", "3"), ("To", "x"), ("l", "9")])
    assert headers.serialize_lines(5) == ["Content-Length: 5", "To: x"]
    assert SipHeaders([("To", "x")]).serialize_lines(0) == ["To: x", "Content-Length: 0"]


def test_remote_error_carries_status_reason_and_extras() -> None:
    error = SipRemoteError(420, "Bad Extension", headers=[("Unsupported", "foo")])
    assert (error.status, error.reason, error.headers) == (
        420,
        "Bad Extension",
        (("Unsupported", "foo"),),
    )
    assert error.message is None
    assert str(error) == "420 Bad Extension"
    assert SipRemoteError().status == 400
