"""The focus's offer/answer (RFC 3264) with SDES keying (RFC 4568)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from focus.sdp.attributes import SdpCrypto, SdpDirection, cryptos, direction
from focus.sdp.offer_answer import (
    DEFAULT_SUITES,
    SdpAnswerPlan,
    SdpCodec,
    SdpFocusPolicy,
    build_answer,
    plan_answer,
)
from focus.sdp.sdes import SDES_SUITES
from focus.sdp.session import SdpAttribute, SdpLocalError, SdpRemoteError, SdpSession
from tests.peers.pcap import tshark_fields

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "sdp"
HEADER = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
PLAIN = SdpFocusPolicy(require_security=False)


def vector(name: str) -> SdpSession:
    return SdpSession.parse((VECTORS / name).read_bytes())


def key(n: int, fill: int = 7) -> str:
    return base64.b64encode(bytes([fill]) * n).decode()


def audio_offer(proto: str = "RTP/SAVP", *attributes: str, formats: str = "0 8 101") -> SdpSession:
    lines = [f"m=audio 5004 {proto} {formats}", "a=rtpmap:101 telephone-event/8000", *attributes]
    return SdpSession.parse(HEADER + "".join(f"{x}\r\n" for x in lines))


def answer_for(offer: SdpSession, plan: SdpAnswerPlan, **kwargs: object) -> SdpSession:
    ports = {s.index: 40000 + 2 * s.index for s in plan.accepted}
    args: dict[str, object] = dict(
        local_host="192.0.2.10", ports=ports, session_id=42, session_version=1
    )
    args.update(kwargs)
    answer = build_answer(offer, plan, **args)  # type: ignore[arg-type]
    assert SdpSession.parse(str(answer)) == answer  # the answer is valid SDP
    return answer


def test_answer_to_baresip_offer() -> None:
    offer = vector("baresip_offer.sdp")
    plan = plan_answer(offer, SdpFocusPolicy())
    (stream,) = plan.streams
    assert stream.accepted and stream.reason is None
    assert (stream.kind, stream.proto, stream.key_mode) == ("audio", "RTP/SAVP", "sdes")
    assert stream.payload_types == [0, 8, 101]
    assert stream.telephone_event_pt == 101
    assert (stream.remote_host, stream.remote_port) == ("127.0.0.1", 20044)
    assert (stream.remote_rtcp_host, stream.remote_rtcp_port) == ("127.0.0.1", 20045)
    assert stream.direction_answer is SdpDirection.SENDRECV and not stream.on_hold
    crypto = stream.crypto
    assert crypto is not None
    assert (crypto.tag, crypto.suite) == (1, "AES_CM_128_HMAC_SHA1_80")
    assert crypto.remote_key_salt == cryptos(offer.media[0])[0].keys[0].key_salt
    assert len(crypto.local_key_salt) == 30 and crypto.local_key_salt != crypto.remote_key_salt

    answer = answer_for(offer, plan)
    text = str(answer)
    inline = base64.b64encode(crypto.local_key_salt).decode()
    assert len(inline) == 40
    assert text == (
        "v=0\r\no=mrf 42 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
        "m=audio 40000 RTP/SAVP 0 8 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{inline}\r\n"
    )


def test_answer_to_linphone_offer() -> None:
    offer = vector("linphone_offer.sdp")
    plan = plan_answer(offer)
    (stream,) = plan.accepted
    # opus/48000/2 first (offer order, RFC 3264 §6.1); telephone-event/8000, not /48000 or /16000
    assert stream.payload_types == [96, 0, 8, 100]
    assert stream.telephone_event_pt == 100
    assert stream.remote_rtcp_port == 7101
    assert stream.crypto is not None and stream.crypto.tag == 1
    answer = answer_for(offer, plan)
    assert answer.media[0].mline == "audio 40000 RTP/SAVP 96 0 8 100"
    (crypto,) = cryptos(answer.media[0])
    assert (crypto.tag, crypto.suite) == (1, "AES_CM_128_HMAC_SHA1_80")
    assert crypto.keys[0].key_salt == stream.crypto.local_key_salt


def test_sipp_offer_with_mki_answered_without_mki() -> None:
    plan = plan_answer(vector("sipp_uac_invite_sdes.sdp"))
    crypto = plan.streams[0].crypto
    assert crypto is not None
    assert crypto.remote_mki == b"\x00\x00\x00\x01" and crypto.remote_lifetime == 2**20
    line = str(answer_for(vector("sipp_uac_invite_sdes.sdp"), plan)).split("a=crypto:")[1]
    assert "|" not in line  # RFC 4568 §6.1: our key params are our own; no MKI
    no_mki = SdpFocusPolicy(accept_mki=False)
    with pytest.raises(SdpRemoteError, match="MKI not supported"):
        plan_answer(vector("sipp_uac_invite_sdes.sdp"), no_mki)


def test_rfc4568_example_answer_copies_timing() -> None:
    offer = vector("rfc4568_multi.sdp")
    plan = plan_answer(offer)
    assert [s.accepted for s in plan.streams] == [True, False]
    answer = answer_for(offer, plan)
    assert [t.start for t in answer.timings] == [2873397496]  # RFC 3264 §6: same t=
    assert answer.media[1].mline == "video 0 RTP/SAVP 31"


def test_plain_rtp_is_488_when_security_required() -> None:
    with pytest.raises(SdpRemoteError) as info:
        plan_answer(vector("neg_plain_rtp_only.sdp"))
    assert info.value.status == 488
    assert "m-line 0: no acceptable keying for RTP/AVP: no a=crypto" in info.value.reason
    assert "m-line 1: video streams are not supported" in info.value.reason


def test_plain_rtp_allowed_when_security_not_required() -> None:
    offer = vector("neg_plain_rtp_only.sdp")
    plan = plan_answer(offer, PLAIN)
    audio, video = plan.streams
    assert (audio.accepted, audio.key_mode, audio.crypto) == (True, "none", None)
    assert not video.accepted
    answer = answer_for(offer, plan)
    assert "a=crypto" not in str(answer)
    assert [m.mline for m in answer.media] == ["audio 40000 RTP/AVP 0 8 101", "video 0 RTP/AVP 96"]


def test_rfc3264_basic_exchange() -> None:
    offer = vector("rfc3264_s10_1_offer.sdp")
    plan = plan_answer(offer, PLAIN)
    assert plan.streams[0].payload_types == [0, 8]  # iLBC is not ours
    assert plan.streams[0].remote_host == "host.atlanta.example.com"
    answer = answer_for(offer, plan)
    assert [m.mline for m in answer.media] == ["audio 40000 RTP/AVP 0 8", "video 0 RTP/AVP 31 32"]
    assert answer.media[1].attributes == []


def test_non_audio_streams_get_port_zero() -> None:
    text = (
        HEADER
        + f"m=audio 5004 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}\r\n"
        "m=video 5006 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "m=application 5070 TCP/TLS/BFCP *\r\na=floorctrl:c-s\r\n"
        "m=message 2855 TCP/TLS/MSRP *\r\na=accept-types:message/cpim\r\n"
        "m=audio 5008 UDP/TLS/RTP/SAVP 0\r\nm=audio 0 RTP/SAVP 0\r\n"
    )
    offer = SdpSession.parse(text)
    plan = plan_answer(offer)
    assert [s.accepted for s in plan.streams] == [True, False, False, False, False, False]
    assert plan.streams[2].reason == "application streams are not supported"
    assert plan.streams[4].reason == "no more audio streams accepted for this participant"
    assert plan.streams[5].reason == "stream disabled in the offer (port 0)"
    answer = answer_for(offer, plan)
    assert [m.mline for m in answer.media] == [
        "audio 40000 RTP/SAVP 0",
        "video 0 RTP/SAVP 96",
        "application 0 TCP/TLS/BFCP *",
        "message 0 TCP/TLS/MSRP *",
        "audio 0 UDP/TLS/RTP/SAVP 0",
        "audio 0 RTP/SAVP 0",
    ]
    assert all(not m.attributes for m in answer.media[1:])


def test_tag_echo_and_offer_preference() -> None:
    offer = audio_offer(
        "RTP/SAVP",
        f"a=crypto:7 AES_256_CM_HMAC_SHA1_80 inline:{key(46)}",
        f"a=crypto:9 AEAD_AES_128_GCM inline:{key(28)}",
        f"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}",
    )
    crypto = plan_answer(offer).streams[0].crypto
    assert crypto is not None and (crypto.tag, crypto.suite) == (9, "AEAD_AES_128_GCM")
    answer = answer_for(offer, plan_answer(offer))
    assert [c.tag for c in cryptos(answer.media[0])] == [9]


@pytest.mark.parametrize("suite", DEFAULT_SUITES)
def test_local_key_length_per_suite(suite: str) -> None:
    info = SDES_SUITES[suite]
    offer = audio_offer("RTP/SAVP", f"a=crypto:2 {suite} inline:{key(info.key_salt_length)}")
    plan = plan_answer(offer)
    crypto = plan.streams[0].crypto
    assert crypto is not None and len(crypto.local_key_salt) == info.key_salt_length
    (line,) = cryptos(answer_for(offer, plan).media[0])
    assert (line.tag, line.suite, line.keys[0].key_salt) == (2, suite, crypto.local_key_salt)


def test_two_participants_never_share_keys() -> None:
    offer = vector("baresip_offer.sdp")
    keys = set()
    for _ in range(20):
        crypto = plan_answer(offer).streams[0].crypto
        assert crypto is not None
        keys.add(bytes(crypto.local_key_salt))
    assert len(keys) == 20


@pytest.mark.parametrize(
    "param", ["UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP", "KDR=10", "X_NEW"]
)
def test_crypto_lines_with_unsupported_session_params_are_skipped(param: str) -> None:
    offer = audio_offer(
        "RTP/SAVP",
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)} {param}",
        f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{key(30)} WSH=128",
    )
    crypto = plan_answer(offer).streams[0].crypto
    assert crypto is not None and crypto.tag == 2
    only_bad = audio_offer(
        "RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)} {param}"
    )
    with pytest.raises(SdpRemoteError, match="crypto:1 .*session parameter") as info:
        plan_answer(only_bad)
    assert info.value.status == 488


def test_malformed_and_multi_key_lines_are_skipped() -> None:
    offer = audio_offer(
        "RTP/SAVP",
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(29)}",
        f"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}|2^20|1:4;inline:{key(30)}|2^20|2:4",
        f"a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{key(30)}",
    )
    crypto = plan_answer(offer).streams[0].crypto
    assert crypto is not None and crypto.tag == 3


def test_short_inline_key_vector_is_488() -> None:
    with pytest.raises(SdpRemoteError) as info:
        plan_answer(vector("neg_short_inline_key.sdp"))
    assert info.value.status == 488
    assert "AES_CM_128_HMAC_SHA1_80 key-salt must be 30 bytes" in info.value.reason


def test_duplicate_crypto_tags_reject_the_stream() -> None:
    offer = audio_offer(
        "RTP/SAVP",
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}",
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{key(30)}",
    )
    with pytest.raises(SdpRemoteError, match="duplicate crypto tag 1"):
        plan_answer(offer)


def test_key_mgmt_only_offer_is_rejected() -> None:
    with pytest.raises(SdpRemoteError, match="a=key-mgmt gave no MIKEY-TICKET keys"):
        plan_answer(vector("tshark_sip_keymgmt.sdp"))
    sdes_only = SdpFocusPolicy(key_modes=frozenset({"sdes"}))
    with pytest.raises(SdpRemoteError, match="a=key-mgmt not accepted by this conference's"):
        plan_answer(vector("tshark_sip_keymgmt.sdp"), sdes_only)


def test_opportunistic_srtp_rfc8643() -> None:
    offer = audio_offer("RTP/AVP", f"a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}")
    plan = plan_answer(offer)
    stream = plan.streams[0]
    assert (stream.proto, stream.key_mode) == ("RTP/AVP", "sdes")
    answer = answer_for(offer, plan)
    assert answer.media[0].proto == "RTP/AVP"
    assert [c.tag for c in cryptos(answer.media[0])] == [4]


@pytest.mark.parametrize("proto", ["RTP/SAVP", "RTP/AVP"])
def test_sdes_refused_by_the_signalling_is_488_even_where_plain_rtp_is_allowed(
    proto: str,
) -> None:
    """``sdes_refused`` (the focus's ``sip.sdes_requires_tls``): the offerer's keys crossed
    unprotected signalling; answering plain RTP instead would be a silent downgrade."""
    offer = audio_offer(proto, f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}")
    why = "SDES keys need SIP over TLS here"
    for secure in (True, False):
        policy = SdpFocusPolicy(require_security=secure, sdes_refused=why)
        with pytest.raises(SdpRemoteError) as info:
            plan_answer(offer, policy)
        assert info.value.status == 488 and f"m-line 0: {why}" in info.value.reason
    plain = plan_answer(  # no keys offered, none refused
        audio_offer("RTP/AVP"), SdpFocusPolicy(require_security=False, sdes_refused=why)
    )
    assert plain.streams[0].accepted


@pytest.mark.parametrize(
    ("offered", "answered", "hold"),
    [
        ("a=sendrecv", "sendrecv", False),
        ("a=sendonly", "recvonly", True),
        ("a=recvonly", "sendonly", False),
        ("a=inactive", "inactive", True),
    ],
)
def test_direction_answers(offered: str, answered: str, hold: bool) -> None:
    offer = audio_offer("RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}", offered)
    plan = plan_answer(offer)
    assert plan.streams[0].direction_answer == answered
    assert plan.streams[0].on_hold is hold
    assert direction(answer_for(offer, plan).media[0]) == answered


def test_hold_reoffer_gets_recvonly_and_keeps_the_key() -> None:
    first = plan_answer(vector("baresip_offer.sdp"))
    reoffer = vector("baresip_hold_reoffer.sdp")
    plan = plan_answer(reoffer, previous=first)
    stream = plan.streams[0]
    assert stream.on_hold and stream.direction_answer is SdpDirection.RECVONLY
    assert stream.crypto is not None and first.streams[0].crypto is not None
    assert stream.crypto.tag == first.streams[0].crypto.tag
    # the offerer kept its key, so do we (RFC 4568 §7.1.4; baresip does not re-key)
    assert stream.crypto.remote_key_salt == first.streams[0].crypto.remote_key_salt
    assert stream.crypto.local_key_salt == first.streams[0].crypto.local_key_salt
    answer = answer_for(reoffer, plan, session_version=2)
    assert "a=recvonly\r\n" in str(answer)
    assert answer.origin.session_version == 2


@pytest.mark.parametrize(
    ("offered", "answered"), [("sendrecv", "recvonly"), ("recvonly", "inactive")]
)
def test_legacy_hold_with_zero_address(offered: str, answered: str) -> None:
    text = str(audio_offer("RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}"))
    offer = SdpSession.parse(
        text.replace("c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0") + f"a={offered}\r\n"
    )
    stream = plan_answer(offer).streams[0]
    assert stream.on_hold and stream.direction_answer == answered


def test_reoffer_keeps_previous_crypto_choice() -> None:
    lines = [
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}",
        f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{key(30)}",
    ]
    first = plan_answer(audio_offer("RTP/SAVP", *lines))
    swapped = audio_offer("RTP/SAVP", *reversed(lines))
    kept = plan_answer(swapped, previous=first).streams[0].crypto
    fresh = plan_answer(swapped).streams[0].crypto
    assert kept is not None and fresh is not None
    assert (kept.tag, fresh.tag) == (1, 2)


def test_reoffer_may_not_remove_mlines_or_downgrade() -> None:
    first = plan_answer(vector("rfc4568_multi.sdp"))
    with pytest.raises(SdpRemoteError, match="removed m-lines") as info:
        plan_answer(vector("rfc4568_s4_5.sdp"), previous=first)
    assert info.value.status == 488
    secured = plan_answer(
        audio_offer("RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}")
    )
    with pytest.raises(SdpRemoteError, match="downgrade"):
        plan_answer(audio_offer("RTP/AVP"), PLAIN, previous=secured)
    assert plan_answer(audio_offer("RTP/AVP"), PLAIN).streams[0].key_mode == "none"


def test_only_one_audio_stream_by_default() -> None:
    line = f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}\r\n"
    text = HEADER + ("m=audio 5004 RTP/SAVP 0\r\n" + line) * 2
    plan = plan_answer(SdpSession.parse(text))
    assert [s.accepted for s in plan.streams] == [True, False]
    assert plan.streams[1].reason == "no more audio streams accepted for this participant"
    two = plan_answer(SdpSession.parse(text), SdpFocusPolicy(max_audio_streams=2))
    assert [s.accepted for s in two.streams] == [True, True]
    assert two.streams[0].crypto != two.streams[1].crypto


def test_no_common_codec_is_488() -> None:
    offer = audio_offer(
        "RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}", formats="18 101"
    )
    with pytest.raises(SdpRemoteError, match="no common audio codec") as info:
        plan_answer(offer)
    assert info.value.status == 488
    g729 = SdpFocusPolicy(codecs=(SdpCodec("G729", 8000),), telephone_event=False)
    assert plan_answer(offer, g729).streams[0].payload_types == [18]


def test_missing_connection_is_400() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n"
    with pytest.raises(SdpRemoteError, match="no c= line") as info:
        plan_answer(SdpSession.parse(text), PLAIN)
    assert info.value.status == 400


def test_rtcp_port_and_mux_in_answer() -> None:
    offer = audio_offer(
        "RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}", "a=rtcp-mux"
    )
    plan = plan_answer(offer)
    assert not plan.streams[0].rtcp_mux and plan.streams[0].remote_rtcp_port == 5005
    text = str(answer_for(offer, plan, rtcp_ports={0: 40011}))
    assert "a=rtcp:40011\r\n" in text and "rtcp-mux" not in text
    assert "a=rtcp:" not in str(answer_for(offer, plan, rtcp_ports={0: 40001}))
    muxed = plan_answer(offer, SdpFocusPolicy(accept_rtcp_mux=True))
    assert muxed.streams[0].rtcp_mux and muxed.streams[0].remote_rtcp_port == 5004
    assert "a=rtcp-mux\r\n" in str(answer_for(offer, muxed))


def test_mid_and_a_single_line_bundle_group_are_answered() -> None:
    """A browser's max-bundle offer (RFC 8843): the answer names the mid and the group."""
    crypto = f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key(30)}"
    text = str(audio_offer("RTP/SAVP", crypto, "a=mid:0"))
    grouped = SdpSession.parse(text.replace("t=0 0\r\n", "t=0 0\r\na=group:BUNDLE 0\r\n", 1))
    answer = answer_for(grouped, plan_answer(grouped))
    assert [str(a) for a in answer.attributes if a.name == "group"] == ["group:BUNDLE 0"]
    assert answer.media[0].get_attribute("mid") == SdpAttribute("mid", "0")
    ungrouped = audio_offer("RTP/SAVP", crypto, "a=mid:audio")  # mid without a group
    answer = answer_for(ungrouped, plan_answer(ungrouped))
    assert not [a for a in answer.attributes if a.name == "group"]
    assert answer.media[0].get_attribute("mid") == SdpAttribute("mid", "audio")
    plain = audio_offer("RTP/SAVP", crypto)
    answer = answer_for(plain, plan_answer(plain))
    assert answer.media[0].get_attribute("mid") is None and not answer.attributes


def test_ipv6_answer_and_build_errors() -> None:
    offer = vector("baresip_offer.sdp")
    plan = plan_answer(offer)
    answer = answer_for(offer, plan, local_host="2001:db8::5")
    assert str(answer.connection) == "IN IP6 2001:db8::5"
    with pytest.raises(SdpLocalError, match="no valid local port"):
        build_answer(offer, plan, local_host="h", ports={}, session_id=1, session_version=1)
    with pytest.raises(SdpLocalError, match="plan does not belong"):
        build_answer(
            vector("rfc4568_multi.sdp"),
            plan,
            local_host="h",
            ports={0: 4},
            session_id=1,
            session_version=1,
        )
    with pytest.raises(SdpLocalError, match="invalid origin"):
        build_answer(offer, plan, local_host="h", ports={0: 4}, session_id=-1, session_version=1)


def test_policy_validation() -> None:
    with pytest.raises(SdpLocalError, match="unsupported key modes"):
        SdpFocusPolicy(key_modes=frozenset({"zrtp"}))
    with pytest.raises(SdpLocalError, match="unknown SRTP suites"):
        SdpFocusPolicy(suites=("NULL_CIPHER",))
    with pytest.raises(SdpLocalError):
        SdpFocusPolicy(codecs=())
    no_sdes = SdpFocusPolicy(key_modes=frozenset())
    with pytest.raises(SdpRemoteError, match=r"a=crypto \(SDES\) not accepted by this conf"):
        plan_answer(vector("baresip_offer.sdp"), no_sdes)


def test_keys_are_not_in_repr() -> None:
    plan = plan_answer(vector("baresip_offer.sdp"))
    crypto = plan.streams[0].crypto
    assert crypto is not None
    assert crypto.local_inline[7:] not in repr(plan)
    assert repr(crypto.local_key_salt) not in repr(plan)


def test_answer_crypto_parses_with_our_codec() -> None:
    plan = plan_answer(vector("linphone_offer.sdp"))
    crypto = plan.streams[0].crypto
    assert crypto is not None
    line = SdpCrypto.parse(f"{crypto.tag} {crypto.suite} {crypto.local_inline}")
    assert line.keys[0].key_salt == crypto.local_key_salt


@pytest.mark.interop
def test_tshark_splits_our_inline_key() -> None:
    offer = vector("baresip_offer.sdp")
    plan = plan_answer(offer)
    crypto = plan.streams[0].crypto
    assert crypto is not None
    body = bytes(answer_for(offer, plan))
    message = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:conf@127.0.0.1>;tag=2\r\nCall-ID: x1\r\n"
        b"CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    fields = (
        "sdp.crypto.tag",
        "sdp.crypto.crypto_suite",
        "sdp.crypto.master_key",
        "sdp.crypto.master_salt",
    )
    tag, suite, master_key, master_salt = tshark_fields(message, "sip", fields, port=5060)
    assert (tag, suite) == ("1", "AES_CM_128_HMAC_SHA1_80")
    assert bytes.fromhex(master_key.replace(":", "")) == crypto.local_key_salt.view()[:16]
    assert bytes.fromhex(master_salt.replace(":", "")) == crypto.local_key_salt.view()[16:]
