"""focus.sip.refusal: a refusal is a status plus a Warning that says why (RFC 3261 §20.43)."""

from __future__ import annotations

import base64
import secrets

from hypothesis import given
from hypothesis import strategies as st

from focus.sip.message import SipResponse, parse_message
from focus.sip.refusal import (
    MAX_WARNING_TEXT,
    SipRefusal,
    SipWarnCode,
    format_warning,
    parse_warning,
    warning_of,
    warning_text,
)

INVITE = (
    b"INVITE sip:room@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776\r\nMax-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:room@example.com>\r\n"
    b"Call-ID: a84b4c76e66710\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def _request():  # type: ignore[no-untyped-def]
    return parse_message(INVITE)


def test_a_refusal_carries_one_warning_with_our_domain() -> None:
    refusal = SipRefusal(488, "a=key-mgmt not accepted by this conference's policy")
    response = refusal.response(_request(), agent="conf.example.com", to_tag="f0")
    assert (response.status, response.reason) == (488, "Not Acceptable Here")
    assert response.headers.get_all("Warning") == [
        '399 conf.example.com "a=key-mgmt not accepted by this conference\'s policy"'
    ]
    assert response.to_addr.tag == "f0"
    again = parse_message(bytes(response))
    assert isinstance(again, SipResponse)
    assert warning_of(again) == "a=key-mgmt not accepted by this conference's policy"


def test_other_headers_reason_and_code_are_kept() -> None:
    refusal = SipRefusal(488, "only video offered", "Not Here", (("Accept", "application/sdp"),),
                         SipWarnCode.MEDIA_TYPE_NOT_AVAILABLE)  # fmt: skip
    response = refusal.response(_request(), agent="h")
    assert response.reason == "Not Here" and response.headers.get("Accept") == "application/sdp"
    assert parse_warning(response.headers.get("Warning") or "") == (304, "h", "only video offered")


def test_no_warning_no_header() -> None:
    response = SipRefusal(420, headers=(("Unsupported", "100rel"),)).response(_request(), agent="h")
    assert response.headers.get("Warning") is None and warning_of(response) is None
    assert response.headers.get("Unsupported") == "100rel"


def test_text_is_made_safe_for_the_header() -> None:
    assert warning_text('bad "name"\r\n\x00\udcff') == "bad 'name'????"
    long = warning_text("x" * 1000)
    assert len(long) == MAX_WARNING_TEXT and long.endswith("...")
    assert format_warning(399, "h", "back\\slash") == '399 h "back\\\\slash"'
    assert warning_text("Zürich ☃") == "Zürich ☃"  # warn-text is UTF-8 (RFC 3261 §25.1)


def test_key_material_is_cut_out_of_a_text_that_quotes_it() -> None:
    key = base64.b64encode(secrets.token_bytes(30)).decode()
    mikey = base64.b64encode(secrets.token_bytes(120)).decode()
    text = warning_text(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20; mikey {mikey}")
    assert key[:8] not in text and mikey[:8] not in text
    assert text == "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...|2^20; mikey ..."
    plain = "MIKEY-TICKET refused: INVALID_TS (replayed MIKEY message)"
    assert warning_text(plain) == plain  # words are not keys


def test_several_warnings_and_malformed_ones() -> None:
    message = parse_message(
        b"SIP/2.0 488 Not Acceptable Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        b'Warning: 305 h "no common codec", 399 h "a, b"\r\nWarning: junk\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    assert warning_of(message) == "no common codec; a, b; junk"
    assert parse_warning('399 h "open') is None and parse_warning('39 h "x"') is None
    assert parse_warning('399 h "x" trailing') is None


@given(st.text(max_size=300), st.sampled_from(list(SipWarnCode)))
def test_any_text_round_trips_as_its_safe_form(text: str, code: SipWarnCode) -> None:
    value = format_warning(code, "mrf.example.com", text)
    assert "\r" not in value and "\n" not in value
    value.encode("utf-8")  # no lone surrogates
    assert parse_warning(value) == (int(code), "mrf.example.com", warning_text(text))
