"""Every 403, 404 and 488 says why, on the wire (issue 13; RFC 3261 §20.43).

Each request is refused by the running focus with the exact status, no SDP
(so no key of ours), and exactly one well-formed ``Warning: 3xx <domain>
"<text>"`` whose text names what was unacceptable and never quotes key
material.  Requests whose Request-URI or From carry bytes that are not UTF-8
get a protocol answer like any other; the package fixture then checks that
the server still answers and never logged a traceback.  (The 403s of the
admission rules and the 488s of MIKEY-TICKET check their Warning in
``test_admission.py`` and ``test_mikey.py``.)
"""

from __future__ import annotations

import base64
import secrets

import pytest

from tests.security.rig import ALICE, MALLORY, ROOM, SecurityServer
from tests.security.sip_probe import SipExchange, SipProbe
from tests.security.table import RefusalLog

CONFERENCE_INFO = "application/conference-info+xml"
SUBSCRIBE_HEADERS = (("Event", "conference"), ("Accept", CONFERENCE_INFO), ("Expires", "600"))


def _sdp(*media: str) -> bytes:
    head = "v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    return (head + "".join(f"{m}\r\n" for m in media)).encode()


def _audio(proto: str, *attributes: str) -> str:
    return "\r\n".join([f"m=audio 40000 {proto} 0", "a=rtpmap:0 PCMU/8000", *attributes])


def _check(
    call: SipExchange, server: SecurityServer, refusal: RefusalLog, name: str, tried: str,
    *, status: int, says: str, secret: str | None = None, code: int | None = None,
) -> None:  # fmt: skip
    body = f"{len(call.response.body)}-byte body" if call.response.body else "no SDP"
    refusal.record(name, tried, f"{call.answered}, {body}")
    assert call.response.status == status, call.status_line
    call.assert_warning(domain=server.server.domain, says=says, code=code)
    assert call.response.body == b""
    if secret is not None:
        assert secret not in bytes(call.response).decode("utf-8", "replace"), "key echoed"


def _invite(server: SecurityServer, body: bytes, uri: str | None = None) -> SipExchange:
    with SipProbe(server.sip) as probe:
        return probe.request("INVITE", uri or server.room_uri, from_uri=ALICE, body=body)


SDES = _audio("RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"
              + base64.b64encode(secrets.token_bytes(30)).decode())  # fmt: skip


@pytest.mark.parametrize("method", ["INVITE", "SUBSCRIBE"])
def test_unknown_conference_is_404_naming_it(
    security_server: SecurityServer, refusal: RefusalLog, method: str
) -> None:
    server = security_server
    uri = server.room_uri.replace(f"sip:{ROOM}@", "sip:nosuch@")
    with SipProbe(server.sip) as probe:
        if method == "INVITE":
            call = probe.request(method, uri, from_uri=ALICE, body=_sdp(SDES))
        else:
            call = probe.request(method, uri, from_uri=ALICE, headers=SUBSCRIBE_HEADERS)
    _check(call, server, refusal, "unknown conference", f"{method} sip:nosuch@…",
           status=404, says="no conference named 'nosuch'")  # fmt: skip


@pytest.mark.parametrize(
    ("tried", "user", "says"),
    [
        ("%-escaped bytes that are not UTF-8", b"ro%FF%FEom", "cannot be a conference name"),
        ("%00 (NUL, which PostgreSQL cannot store)", b"ro%00om", "cannot be a conference name"),
        (
            "an escaped non-ASCII letter folding to ASCII (U+212A KELVIN)",
            b"%E2%84%AAroom",
            "cannot be a conference name",
        ),
    ],  # fmt: skip
    ids=["not-utf8", "nul", "kelvin"],
)
@pytest.mark.parametrize("method", ["INVITE", "SUBSCRIBE"])
def test_a_request_uri_that_cannot_name_a_conference_is_404(
    security_server: SecurityServer, refusal: RefusalLog, method: str, tried: str,
    user: bytes, says: str,
) -> None:  # fmt: skip
    server = security_server
    uri = f"sip:{{}}@{server.host}:{server.server.port}".encode().replace(b"{}", user)
    head = [b"%s %s SIP/2.0" % (method.encode(), uri), b"Max-Forwards: 70",
            f"From: <{ALICE}>;tag={secrets.token_hex(4)}".encode(), b"To: <%s>" % uri,
            f"Call-ID: {secrets.token_hex(8)}@probe".encode(), f"CSeq: 1 {method}".encode(),
            b"Contact: <sip:probe@127.0.0.1>"]  # fmt: skip
    body = b""
    if method == "INVITE":
        head.append(b"Content-Type: application/sdp")
        body = _sdp(SDES)
    else:
        head += [f"{name}: {value}".encode() for name, value in SUBSCRIBE_HEADERS]
    with SipProbe(server.sip) as probe:
        call = probe.request_bytes(head, body)
    _check(call, server, refusal, "Request-URI names no conference",
           f"{method} whose user part is {tried}", status=404, says=says)  # fmt: skip


def test_a_from_uri_with_bytes_that_are_not_utf8_is_403(
    security_server: SecurityServer, refusal: RefusalLog
) -> None:
    """Raw and escaped non-UTF-8 bytes in From (and its display name): an identity
    like any other unknown one."""
    server = security_server
    with SipProbe(server.sip) as probe:
        call = probe.request_bytes([
            f"INVITE {server.room_uri} SIP/2.0".encode(), b"Max-Forwards: 70",
            b'From: "M\xffl\xc3\x28ry" <sip:m%FFallory%ED%A0%80@127.0.0.1>;tag=1a2b',
            f"To: <{server.room_uri}>".encode(), f"Call-ID: {secrets.token_hex(8)}@p".encode(),
            b"CSeq: 1 INVITE", b"Contact: <sip:probe@127.0.0.1>", b"Subject: \xfe\xff\x00",
            b"Content-Type: application/sdp",
        ], _sdp(SDES))  # fmt: skip
    _check(call, server, refusal, "identity not on the list",
           "INVITE From with %FF and a display name that is not UTF-8",
           status=403, says="the identity in From is not on the authorized list")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "tried", "media", "says", "code"),
    [
        (
            "plain RTP (security required)",
            "m=audio RTP/AVP, no a=crypto",
            (_audio("RTP/AVP"),),
            "no acceptable keying for RTP/AVP: no a=crypto",
            399,
        ),
        (
            "DTLS-SRTP outside the policy",
            "m=audio UDP/TLS/RTP/SAVP to a room without dtls",
            (
                _audio(
                    "UDP/TLS/RTP/SAVP",
                    "a=setup:actpass",
                    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
                ),
            ),
            "DTLS-SRTP not accepted by this conference's policy",
            399,
        ),
        (
            "MSRP without a fingerprint",
            "only m=message TCP/TLS/MSRP, no a=fingerprint",
            (
                "m=message 40001 TCP/TLS/MSRP *\r\na=accept-types:message/cpim\r\n"
                "a=path:msrps://127.0.0.1:40001/abc;tcp\r\na=setup:active",
            ),
            "TCP/TLS/MSRP needs a=fingerprint with SHA-256 or stronger",
            399,
        ),
        (
            "no stream the focus serves",
            "only m=video",
            ("m=video 40002 RTP/SAVP 96\r\na=rtpmap:96 H264/90000",),
            "video streams are not supported",
            304,
        ),  # 304 Media type not available
    ],  # fmt: skip
    ids=["plain-rtp", "dtls", "msrp-no-fingerprint", "video"],
)
def test_an_offer_without_acceptable_security_is_488_saying_why(
    security_server: SecurityServer, refusal: RefusalLog, name: str, tried: str,
    media: tuple[str, ...], says: str, code: int,
) -> None:  # fmt: skip
    call = _invite(security_server, _sdp(*media))
    _check(call, security_server, refusal, name, tried, status=488, says=says, code=code)


def test_a_malformed_crypto_key_is_not_echoed(
    security_server: SecurityServer, refusal: RefusalLog
) -> None:
    """A 29-byte SDES key: the Warning names the rule, never the key."""
    key = base64.b64encode(secrets.token_bytes(29)).decode()
    call = _invite(security_server, _sdp(_audio(
        "RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}"
    )))  # fmt: skip
    _check(call, security_server, refusal, "malformed a=crypto", "a 29-byte inline: key",
           status=488, says="key-salt must be 30 bytes", secret=key[:16])  # fmt: skip


def test_an_invite_without_an_offer_is_488(
    security_server: SecurityServer, refusal: RefusalLog
) -> None:
    with SipProbe(security_server.sip) as probe:
        call = probe.request("INVITE", security_server.room_uri, from_uri=MALLORY)
    _check(call, security_server, refusal, "INVITE without SDP", "INVITE with no body",
           status=488, says="an SDP offer in the INVITE is required")  # fmt: skip
