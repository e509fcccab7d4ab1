"""SipUri and SipNameAddr (RFC 3261 §19.1, §20.10, §25.1; RFC 3966)."""

import pytest

from focus.sip.headers import SipRemoteError
from focus.sip.uri import SipNameAddr, SipUri


def test_parse_full_sip_uri() -> None:
    uri = SipUri.parse("sips:alice:secret@Example.COM:5061;transport=tcp;lr?subject=hi&x=1")
    assert uri.scheme == "sips"
    assert (uri.user, uri.password, uri.host, uri.port) == ("alice", "secret", "example.com", 5061)
    assert uri.params == {"transport": "tcp", "lr": None}
    assert uri.headers == {"subject": "hi", "x": "1"}
    assert str(uri) == "sips:alice:secret@example.com:5061;transport=tcp;lr?subject=hi&x=1"


def test_aor_normalises_scheme_port_params_and_escapes() -> None:
    assert SipUri.parse("sips:%75se%72@EXAMPLE.com:5061;lr").aor == "sip:user@example.com"
    assert SipUri.parse("sip:example.com").aor == "sip:example.com"
    assert SipUri.parse("tel:+1-201-555-0123").aor == "tel:+12015550123"


def test_ipv6_reference_loses_and_regains_brackets() -> None:
    uri = SipUri.parse("sip:bob@[2001:DB8::10]:5070;maddr=[2001:db8::1]")
    assert uri.host == "2001:db8::10"
    assert uri.port == 5070
    assert uri.params == {"maddr": "[2001:db8::1]"}
    assert str(uri) == "sip:bob@[2001:db8::10]:5070;maddr=[2001:db8::1]"
    assert uri.aor == "sip:bob@[2001:db8::10]"


def test_escapes_are_undone_exactly_once() -> None:
    # RFC 4475 §3.1.1.3: n%61me=v%61lue%25%34%31 is name=value%41, not valueA.
    uri = SipUri.parse("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert uri.user == "caller"
    assert uri.params == {"lr": None, "name": "value%41"}
    assert str(uri) == "sip:caller@host5.example.net;lr;name=value%2541"


def test_escaped_null_survives() -> None:
    # RFC 4475 §3.1.1.4: the AOR must not be shortened at the null.
    one = SipUri.parse("sip:%00@host5.example.com")
    two = SipUri.parse("sip:%00%00@host5.example.com")
    assert one.user == "\x00"
    assert two.user == "\x00\x00"
    assert one.aor == "sip:%00@host5.example.com"
    assert one.aor != two.aor


def test_user_part_may_hold_semicolons_and_question_marks() -> None:
    uri = SipUri.parse("sip:user;par=u%40example.net@example.com")
    assert (uri.user, uri.host, uri.params) == ("user;par=u@example.net", "example.com", {})
    assert SipUri.parse(str(uri)) == uri


def test_tel_uri() -> None:
    uri = SipUri.parse("tel:7042;phone-context=example.com")
    assert uri.scheme == "tel"
    assert uri.user == "7042"
    assert uri.params == {"phone-context": "example.com"}
    assert str(uri) == "tel:7042;phone-context=example.com"


@pytest.mark.parametrize(
    "text", ["nobodyKnowsThisScheme:opaque", "soap.beep://192.0.2.103:3002", "http://x"]
)
def test_other_schemes_are_416(text: str) -> None:
    with pytest.raises(SipRemoteError) as info:
        SipUri.parse(text)
    assert info.value.status == 416


@pytest.mark.parametrize(
    "text",
    [
        "sip",
        "sip:",
        "sip:user@",
        "sip:user@host:99999",
        "sip:user@host:12a",
        "sip:us er@host",
        "sip:user@[::zz]",
        "sip:user@[::1",
        "sip:user@host;;lr",
        "sip:user@host;a=b c",
        "sip:user@host?novalue",
        "sip:user@-host!",
        "sip:%zz@host",
        "tel:7042",
        "tel:abc-xyz",
        "1sip:user@host",
    ],
)
def test_malformed_uris_are_400(text: str) -> None:
    with pytest.raises(SipRemoteError) as info:
        SipUri.parse(text)
    assert info.value.status == 400


def test_name_addr_forms() -> None:
    quoted = SipNameAddr.parse('"Alice \\"A\\" \\\\" <sip:alice@example.com>;tag=1928;x')
    assert quoted.display_name == 'Alice "A" \\'
    assert quoted.tag == "1928"
    assert quoted.params == {"tag": "1928", "x": None}
    assert SipNameAddr.parse(str(quoted)) == quoted

    tokens = SipNameAddr.parse("token1~` token2 <sip:b@example.com>")
    assert tokens.display_name == "token1~` token2"

    no_space = SipNameAddr.parse("caller<sip:caller@example.com>;tag=323")
    assert (no_space.display_name, no_space.tag) == ("caller", "323")

    spec = SipNameAddr.parse("sip:+19725552222@gw1.example.net;unknownparam")
    assert spec.display_name is None
    assert spec.uri.params == {}
    assert spec.params == {"unknownparam": None}
    assert str(spec) == "<sip:+19725552222@gw1.example.net>;unknownparam"


def test_name_addr_quoted_and_ipv6_param_values() -> None:
    value = SipNameAddr.parse('<sip:a@b>;p="x;y, z";received=[2001:db8::1]')
    assert value.params == {"p": '"x;y, z"', "received": "[2001:db8::1]"}


@pytest.mark.parametrize(
    "text",
    [
        '"Mr. J. User <sip:j.user@example.com>',  # RFC 4475 quotbal
        '"Watson, Thomas" < sip:t.watson@example.org >',  # badaspec
        "Watson, Thomas <sip:t.watson@example.org>",  # baddn
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",  # regbadct
        '"Joe" <sip:joe@example.org>;;;;',  # badinv01
        "<sip:a@b",
        "<sip:a@b> junk",
        '"x" junk <sip:a@b>',
        "<sip:a@b>;=v",
        "<sip:a@b>;tag=\x01",
        "",
    ],
)
def test_malformed_name_addr(text: str) -> None:
    with pytest.raises(SipRemoteError) as info:
        SipNameAddr.parse(text)
    assert info.value.status == 400
