"""SDP for MSRP chat (focus.sdp.msrp): planning the focus's answer to ``m=message``.

Offers: RFC 4975 §8 / §14.4 examples (plain TCP and TLS with a SHA-1
fingerprint), an RFC 6714 §4 style CEMA offer (a middlebox address in c=/m=,
the endpoint's own address in a=path) and what ``mrf ue`` offers
(:func:`msrp_offer_media`).
"""

from __future__ import annotations

import pytest

from focus.sdp.attributes import SdpFingerprint, SdpSetup, fingerprints, setup
from focus.sdp.msrp import (
    MsrpRejected,
    SdpMsrpLocal,
    SdpMsrpPolicy,
    msrp_answer_media,
    msrp_offer_media,
    plan_msrp,
)
from focus.sdp.offer_answer import SdpFocusPolicy, build_answer, plan_answer
from focus.sdp.session import (
    SdpAttribute,
    SdpConnection,
    SdpOrigin,
    SdpRemoteError,
    SdpSession,
    SdpTiming,
)

FP256 = "SHA-256 " + ":".join(["AB"] * 32)
FP384 = "SHA-384 " + ":".join(["CD"] * 48)
FP1 = "SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB"
OURS = SdpFingerprint.parse("SHA-256 " + ":".join(["11"] * 32))
LOCAL = SdpMsrpLocal("127.0.0.1", 2855, "focusSess1", OURS)
POLICY = SdpMsrpPolicy()
HEAD = "v=0\r\no=alice 2890844526 2890844527 IN IP4 {c}\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n"

# RFC 4975 §8 (first example): plain TCP, text/plain only
RFC4975_S8 = (
    "m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\n"
    "a=path:msrp://192.0.2.1:7394/2s93i9ek2a;tcp\r\n"
)
# RFC 4975 §14.4: TCP/TLS/MSRP with a SHA-1 fingerprint (too weak for RFC 8122 §5)
RFC4975_S14 = (
    "m=message 7654 TCP/TLS/MSRP *\r\na=accept-types:message/cpim text/plain\r\n"
    "a=path:msrps://192.0.2.1:7654/jshA7weso3ks;tcp\r\n"
    f"a=fingerprint:{FP1}\r\n"
)
SECURE = (
    "m=message 7654 TCP/TLS/MSRP *\r\na=accept-types:message/cpim text/plain\r\n"
    "a=accept-wrapped-types:text/plain\r\na=path:msrps://192.0.2.1:7654/jshA7weso3ks;tcp\r\n"
    f"a=fingerprint:{FP256}\r\n"
)


def offer(media: str, address: str = "192.0.2.1") -> SdpSession:
    return SdpSession.parse(HEAD.format(c=address) + media)


def plan(media: str, address: str = "192.0.2.1", policy: SdpMsrpPolicy = POLICY):  # type: ignore[no-untyped-def]
    session = offer(media, address)
    return plan_msrp(session, session.media[0], policy)


def rejected(media: str, address: str = "192.0.2.1", policy: SdpMsrpPolicy = POLICY) -> str:
    with pytest.raises(MsrpRejected) as info:
        plan(media, address, policy)
    return info.value.reason


def test_secure_offer_is_accepted_with_our_path_setup_and_fingerprint() -> None:
    session = offer(SECURE + "a=setup:actpass\r\n")
    chat = plan_msrp(session, session.media[0], POLICY)
    assert chat.secure and not chat.we_connect and not chat.cema
    assert chat.remote_path == ("msrps://192.0.2.1:7654/jshA7weso3ks;tcp",)
    assert [str(f) for f in chat.remote_fingerprints] == [FP256]
    answer = msrp_answer_media(session.media[0], chat, LOCAL, POLICY)
    assert answer.mline == "message 2855 TCP/TLS/MSRP *"
    attributes = {a.name: a.value for a in answer.attributes}
    assert attributes["path"] == "msrps://127.0.0.1:2855/focusSess1;tcp"
    assert attributes["fingerprint"] == str(OURS)
    assert attributes["setup"] == "passive"
    assert attributes["accept-types"] == "message/cpim"
    assert attributes["max-size"] == str(POLICY.max_size)
    assert "msrp-cema" in attributes and attributes["chatroom"] == "nickname private-messages"


def test_the_focus_answer_writes_the_message_line() -> None:
    session = offer(SECURE + "a=setup:actpass\r\n")
    focus = SdpFocusPolicy(msrp=POLICY)
    planned = plan_answer(session, focus)
    (stream,) = planned.streams
    assert stream.accepted and stream.key_mode == "fingerprint" and stream.msrp is not None
    answer = build_answer(session, planned, local_host="127.0.0.1", ports={}, session_id=1,
                          session_version=1, msrp_local={0: (LOCAL, POLICY)})  # fmt: skip
    text = "\r\n".join(answer.lines())
    assert "m=message 2855 TCP/TLS/MSRP *\r\n" in text
    assert f"a=fingerprint:{OURS}\r\n" in text and "a=setup:passive\r\n" in text
    reparsed = SdpSession.parse(text)
    assert fingerprints(reparsed.media[0], reparsed) == [OURS]


def test_plain_tcp_is_refused_when_security_is_required() -> None:
    assert "requires TLS" in rejected(RFC4975_S8.replace("text/plain", "message/cpim"))
    # the RFC 4975 §8 example as is: also no message/cpim
    assert "TLS" in rejected(RFC4975_S8)
    relaxed = SdpMsrpPolicy(require_security=False)
    chat = plan(RFC4975_S8.replace("text/plain", "message/cpim"), policy=relaxed)
    assert not chat.secure and chat.remote_fingerprints == ()


def test_plain_tcp_only_offer_gets_port_zero_or_488_in_the_focus_answer() -> None:
    media = RFC4975_S8.replace("text/plain", "message/cpim")
    audio = (
        "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 "
        "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    )
    focus = SdpFocusPolicy(msrp=POLICY)
    planned = plan_answer(offer(media + audio), focus)
    assert not planned.streams[0].accepted and planned.streams[1].accepted
    answer = build_answer(offer(media + audio), planned, local_host="127.0.0.1",
                          ports={1: 40000}, session_id=1, session_version=1)  # fmt: skip
    assert answer.media[0].port == 0 and answer.media[0].proto == "TCP/MSRP"
    with pytest.raises(SdpRemoteError) as info:
        plan_answer(offer(media), focus)
    assert info.value.status == 488


def test_tls_needs_a_sha256_or_stronger_fingerprint() -> None:
    assert "SHA-256" in rejected(RFC4975_S14)  # SHA-1 only (RFC 8122 §5)
    assert "SHA-256" in rejected(SECURE.replace(f"a=fingerprint:{FP256}\r\n", ""))
    several = SECURE + f"a=fingerprint:{FP1}\r\na=fingerprint:{FP384}\r\n"
    chat = plan(several)
    assert {f.hash_func for f in chat.remote_fingerprints} == {"sha-256", "sha-384"}
    session_level = offer(SECURE.replace(f"a=fingerprint:{FP256}\r\n", ""))
    session_level.attributes.append(SdpAttribute("fingerprint", FP256))
    assert plan_msrp(session_level, session_level.media[0], POLICY).remote_fingerprints


def test_a_policy_without_fingerprint_takes_only_mikey_keyed_tls() -> None:
    """Key modes without ``fingerprint``: certificate TLS is refused, TLS-PSK is not."""
    psk_only = SdpMsrpPolicy(fingerprint=False)
    reason = rejected(SECURE, policy=psk_only)
    assert reason == "a=fingerprint (TCP/TLS/MSRP) not accepted by this conference's policy"
    keyed = offer(SECURE.replace(f"a=fingerprint:{FP256}\r\n", ""))
    assert plan_msrp(keyed, keyed.media[0], psk_only, psk=True).secure


@pytest.mark.parametrize(
    ("offered", "answered", "we_connect"),
    [
        ("a=setup:actpass\r\n", "passive", False),  # RFC 4145 §4.1: we may choose; we listen
        ("a=setup:active\r\n", "passive", False),
        ("a=setup:passive\r\n", "active", True),  # the participant listens: we connect
        ("", "passive", False),  # absent: the offerer connects (RFC 4975 §8.5)
    ],
)
def test_setup_roles_follow_rfc_4145(offered: str, answered: str, we_connect: bool) -> None:
    session = offer(SECURE + offered)
    chat = plan_msrp(session, session.media[0], POLICY)
    assert chat.we_connect is we_connect
    answer = msrp_answer_media(session.media[0], chat, LOCAL, POLICY)
    assert setup(answer) is SdpSetup(answered)
    if we_connect:
        assert (chat.connect_host, chat.connect_port) == ("192.0.2.1", 7654)


def test_holdconn_and_bad_setup_are_refused() -> None:
    assert "holdconn" in rejected(SECURE + "a=setup:holdconn\r\n")
    with pytest.raises(SdpRemoteError):
        plan(SECURE + "a=setup:sideways\r\n")


def test_cema_connects_to_the_c_and_m_line_address() -> None:
    # RFC 6714 §4: a middlebox's address in c=/m=, the endpoint's own in a=path
    media = SECURE.replace("m=message 7654", "m=message 40001") + "a=msrp-cema\r\n"
    chat = plan(media + "a=setup:passive\r\n", address="198.51.100.7")
    assert chat.cema and chat.we_connect
    assert (chat.connect_host, chat.connect_port) == ("198.51.100.7", 40001)
    assert chat.remote_path == ("msrps://192.0.2.1:7654/jshA7weso3ks;tcp",)


def test_without_cema_a_middlebox_address_is_refused() -> None:
    media = SECURE.replace("m=message 7654", "m=message 40001")
    assert "msrp-cema" in rejected(media + "a=setup:passive\r\n", address="198.51.100.7")
    assert "msrp-cema" in rejected(SECURE, address="198.51.100.7")
    # the same addresses: plain RFC 4975, connect to the path URI
    chat = plan(SECURE + "a=setup:passive\r\n")
    assert not chat.cema and (chat.connect_host, chat.connect_port) == ("192.0.2.1", 7654)


def test_an_active_offer_on_the_discard_port_needs_no_matching_address() -> None:
    media = SECURE.replace("m=message 7654", "m=message 9") + "a=setup:active\r\n"
    chat = plan(media)
    assert not chat.we_connect and not chat.cema


def test_accept_types_must_allow_message_cpim() -> None:
    assert "message/cpim" in rejected(SECURE.replace("message/cpim text/plain", "text/plain"))
    assert "accept-types" in rejected(
        SECURE.replace("a=accept-types:message/cpim text/plain\r\n", "")
    )
    for wildcard in ("message/*", "*", "MESSAGE/CPIM"):
        assert plan(SECURE.replace("message/cpim text/plain", wildcard)).secure


def test_max_size_is_read_and_capped() -> None:
    assert plan(SECURE).remote_max_size is None
    assert plan(SECURE + "a=max-size:4096\r\n").remote_max_size == 4096
    assert plan(SECURE + "a=max-size:lots\r\n").remote_max_size is None
    assert plan(SECURE + "a=max-size:" + "9" * 30 + "\r\n").remote_max_size is None


@pytest.mark.parametrize(
    "path",
    [
        "msrp://192.0.2.1:7654/jshA7weso3ks;tcp",  # msrp: on TLS
        "msrps://192.0.2.1/jshA7weso3ks;tcp",  # no port (RFC 4975 §8.6: explicit port)
        "http://192.0.2.1:7654/x;tcp",
        "msrps://192.0.2.1:7654/x",  # no transport
    ],
)
def test_bad_paths_are_refused(path: str) -> None:
    media = SECURE.replace("msrps://192.0.2.1:7654/jshA7weso3ks;tcp", path)
    assert rejected(media)


def test_missing_path_and_disabled_or_foreign_lines() -> None:
    assert "a=path" in rejected(SECURE.replace("a=path:msrps://192.0.2.1:7654/jshA7weso3ks;tcp\r\n",
                                               ""))  # fmt: skip
    assert "port 0" in rejected(SECURE.replace("m=message 7654", "m=message 0"))
    assert "not MSRP" in rejected(SECURE.replace("TCP/TLS/MSRP", "UDP/TLS/MSRP"))


def test_our_own_offer_is_accepted() -> None:
    """What ``mrf ue`` offers (msrp_offer_media) passes the focus's planning."""
    ue = SdpMsrpLocal("127.0.0.1", 45000, "ueSession", SdpFingerprint.parse(FP256))
    media = msrp_offer_media(ue)
    session = SdpSession(
        origin=SdpOrigin("mrf-ue", 1, 1, "127.0.0.1", "IP4"), name="-",
        connection=SdpConnection("127.0.0.1", "IP4"), timings=[SdpTiming()], media=[media],
    )  # fmt: skip
    parsed = SdpSession.parse(str(session))
    chat = plan_msrp(parsed, parsed.media[0], POLICY)
    assert chat.secure and chat.cema and not chat.we_connect
    assert chat.remote_path == ("msrps://127.0.0.1:45000/ueSession;tcp",)
    assert setup(parsed.media[0]) is SdpSetup.ACTPASS
    passive = msrp_offer_media(ue, setup_role=SdpSetup.PASSIVE)
    session.media = [passive]
    parsed = SdpSession.parse(str(session))
    chat = plan_msrp(parsed, parsed.media[0], POLICY)
    assert chat.we_connect and (chat.connect_host, chat.connect_port) == ("127.0.0.1", 45000)


# RFC 7977 §8 (an offer of a WebSocket client: the .invalid host, ;ws, port 9)
WEBSOCKET = (
    "m=message 9 TCP/WSS/MSRP *\r\na=accept-types:message/cpim text/plain\r\n"
    "a=path:msrps://bzt3a5ctxcoc.invalid:2855/vq2ccqgl1p;ws\r\n"
)


def test_msrp_over_websocket_only_for_a_call_over_sip_websocket() -> None:
    sdp = offer(WEBSOCKET)
    with pytest.raises(MsrpRejected, match="SIP/WebSocket"):
        plan_msrp(sdp, sdp.media[0], POLICY)
    plan = plan_msrp(sdp, sdp.media[0], SdpMsrpPolicy(websocket=True))
    assert plan.websocket and plan.secure and not plan.we_connect
    assert plan.remote_path == ("msrps://bzt3a5ctxcoc.invalid:2855/vq2ccqgl1p;ws",)
    local = SdpMsrpLocal("127.0.0.1", 2855, "focusSess1", OURS, transport="ws")
    answer = msrp_answer_media(sdp.media[0], plan, local, SdpMsrpPolicy(websocket=True))
    text = "\r\n".join(answer.lines())
    assert "TCP/WSS/MSRP" in text and "a=path:msrps://127.0.0.1:2855/focusSess1;ws" in text
    assert "a=fingerprint" not in text and "a=setup:passive" in text


def test_plain_ws_msrp_only_with_sip_over_plain_ws() -> None:
    plain = WEBSOCKET.replace("TCP/WSS/MSRP", "TCP/WS/MSRP").replace("msrps:", "msrp:")
    sdp = offer(plain)
    with pytest.raises(MsrpRejected, match="loopback"):
        plan_msrp(sdp, sdp.media[0], SdpMsrpPolicy(websocket=True))
    plan = plan_msrp(sdp, sdp.media[0], SdpMsrpPolicy(websocket=True, websocket_plain=True))
    assert plan.websocket and not plan.secure
    no_ws = plain.replace(";ws", ";tcp")
    sdp = offer(no_ws)
    with pytest.raises(MsrpRejected, match=";ws"):
        plan_msrp(sdp, sdp.media[0], SdpMsrpPolicy(websocket=True, websocket_plain=True))
