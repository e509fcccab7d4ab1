"""Admission decisions: identity source, anonymity, authorization (TS 33.328 G.3.1)."""

from __future__ import annotations

import pytest

from focus.policy import IdentitySource, admit, caller_identity
from focus.sip.message import parse_message

TRUSTED = frozenset({"127.0.0.2"})


def invite(*headers: str, from_uri: str = "sip:alice@example.com") -> bytes:
    lines = [
        "INVITE sip:retro@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK-1",
        f"From: <{from_uri}>;tag=1",
        "To: <sip:retro@127.0.0.1>",
        "Call-ID: c1",
        "CSeq: 1 INVITE",
        "Contact: <sip:alice@127.0.0.9:5070>",
        "Max-Forwards: 70",
        *headers,
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def identity_of(data: bytes, source: str = "127.0.0.9"):
    request = parse_message(data)
    return caller_identity(request, source, TRUSTED)


def test_from_is_the_identity_without_a_trusted_proxy() -> None:
    who = identity_of(invite("P-Asserted-Identity: <sip:boss@example.com>"))
    assert who.aor == "sip:alice@example.com"
    assert who.source is IdentitySource.FROM
    assert not who.anonymous


def test_asserted_identity_from_trusted_proxy_wins() -> None:
    who = identity_of(
        invite('P-Asserted-Identity: "B" <sip:boss@Example.COM;user=phone>'), "127.0.0.2"
    )
    assert who.aor == "sip:boss@example.com"
    assert who.source is IdentitySource.ASSERTED


def test_sip_uri_preferred_over_tel_in_asserted_identity() -> None:
    headers = (
        "P-Asserted-Identity: <tel:+15551234>",
        "P-Asserted-Identity: <sips:bob@example.com>",
    )
    who = identity_of(invite(*headers), "127.0.0.2")
    assert who.aor == "sip:bob@example.com"


def test_trusted_proxy_without_asserted_identity_falls_back_to_from() -> None:
    who = identity_of(invite(), "127.0.0.2")
    assert who.aor == "sip:alice@example.com"
    assert who.source is IdentitySource.FROM


@pytest.mark.parametrize(
    ("headers", "from_uri", "source"),
    [
        (("Privacy: id",), "sip:alice@example.com", "127.0.0.9"),
        (("Privacy: header;id",), "sip:alice@example.com", "127.0.0.9"),
        ((), "sip:anonymous@anonymous.invalid", "127.0.0.9"),
        ((), "sip:Anonymous@example.com", "127.0.0.9"),
        (("P-Asserted-Identity: <sip:anonymous@anonymous.invalid>",), "sip:a@b.c", "127.0.0.2"),
        (("P-Asserted-Identity: <sip:carol@example.com>", "Privacy: id"), "sip:a@b.c", "127.0.0.2"),
    ],
)
def test_anonymous_callers(headers: tuple[str, ...], from_uri: str, source: str) -> None:
    who = identity_of(invite(*headers, from_uri=from_uri), source)
    assert who.anonymous
    assert who.aor is None
    assert str(who) == "anonymous"


def test_privacy_none_is_not_anonymous() -> None:
    assert not identity_of(invite("Privacy: none")).anonymous


def test_admission_table() -> None:
    alice = identity_of(invite())
    anonymous = identity_of(invite("Privacy: id"))
    authorized = {"sip:alice@example.com": "chair"}
    assert admit(alice, authorized, allow_anonymous=False).role == "chair"
    assert admit(alice, {}, allow_anonymous=True).status == 403
    refused = admit(anonymous, authorized, allow_anonymous=False)
    assert (refused.status, refused.allowed) == (403, False)
    allowed = admit(anonymous, authorized, allow_anonymous=True)
    assert (allowed.status, allowed.role) == (200, "participant")


def test_user_part_is_case_sensitive_host_is_not() -> None:
    who = identity_of(invite(from_uri="sip:Alice@EXAMPLE.com:5070;transport=tcp"))
    assert who.aor == "sip:Alice@example.com"
    assert admit(who, {"sip:alice@example.com": "participant"}, allow_anonymous=False).status == 403
