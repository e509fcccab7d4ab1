"""SDP for BFCP (RFC 8856) in the focus's answer."""

from __future__ import annotations

import pytest

from focus.sdp.attributes import SdpFingerprint
from focus.sdp.bfcp import (
    CONFERENCE_AUDIO_LABEL,
    SdpBfcpLocal,
    SdpBfcpPolicy,
    parse_bfcp_answer,
)
from focus.sdp.offer_answer import SdpFocusPolicy, build_answer, plan_answer
from focus.sdp.session import SdpRemoteError, SdpSession

FP = "SHA-256 " + ":".join(["AB"] * 32)


def _offer(bfcp: str) -> SdpSession:
    return SdpSession.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=application 9 TCP/TLS/BFCP *\r\n" + bfcp +
        "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 "
        "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    )  # fmt: skip


GOOD = (
    f"a=setup:active\r\na=connection:new\r\na=fingerprint:{FP}\r\n"
    "a=floorctrl:c-only\r\na=bfcpver:1\r\n"
)
POLICY = SdpFocusPolicy(bfcp=SdpBfcpPolicy())


def test_the_answer_carries_every_rfc_8856_attribute() -> None:
    offer = _offer(GOOD)
    plan = plan_answer(offer, POLICY)
    floor = plan.streams[0]
    assert floor.accepted and floor.bfcp is not None and not floor.bfcp.we_connect
    assert floor.bfcp.stream_index == 1 and floor.key_mode == "fingerprint"
    local = SdpBfcpLocal("127.0.0.1", 2856, 4321, 7, ((1, floor.bfcp.label),),
                         SdpFingerprint.parse(FP))  # fmt: skip
    answer = build_answer(offer, plan, local_host="127.0.0.1", ports={1: 5000}, session_id=1,
                          session_version=1, bfcp_local={0: local})  # fmt: skip
    text = str(answer)
    for line in ("m=application 2856 TCP/TLS/BFCP *", "a=floorctrl:s-only", "a=confid:4321",
                 "a=userid:7", "a=floorid:1 mstrm:audio1", "a=bfcpver:1", "a=setup:passive",
                 "a=connection:new", f"a=fingerprint:{FP}", "a=label:audio1"):  # fmt: skip
        assert line in text, text
    parsed = parse_bfcp_answer(answer, answer.media[0])
    assert (parsed.conference_id, parsed.user_id, parsed.floors) == (4321, 7, ((1, "audio1"),))


@pytest.mark.parametrize(
    "bad",
    [
        GOOD.replace("c-only", "s-only"),
        GOOD.replace("a=bfcpver:1", "a=bfcpver:2"),
        GOOD.replace(f"a=fingerprint:{FP}\r\n", ""),
        GOOD.replace("active", "holdconn"),
    ],
)
def test_unusable_bfcp_lines_get_port_zero(bad: str) -> None:
    plan = plan_answer(_offer(bad), POLICY)
    assert not plan.streams[0].accepted and plan.streams[1].accepted


def test_a_passive_offer_makes_the_focus_connect() -> None:
    plan = plan_answer(_offer(GOOD.replace("active", "passive")), POLICY)
    assert plan.streams[0].bfcp is not None and plan.streams[0].bfcp.we_connect


def test_a_policy_without_fingerprint_takes_only_mikey_keyed_tls() -> None:
    psk_only = SdpFocusPolicy(bfcp=SdpBfcpPolicy(fingerprint=False))
    floor = plan_answer(_offer(GOOD), psk_only).streams[0]
    assert not floor.accepted
    assert floor.reason == "a=fingerprint (TCP/TLS/BFCP) not accepted by this conference's policy"


def test_a_bfcp_only_offer_gets_floors_of_the_conference_audio() -> None:
    """A chair console (no audio line): accepted; a=floorid names the conference's audio
    (RFC 8856 §5.4 needs an mstrm token) and no m-line gets an a=label."""
    offer = SdpSession.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=application 9 TCP/TLS/BFCP *\r\n" + GOOD
    )
    plan = plan_answer(offer, POLICY)
    (floor,) = plan.streams
    assert floor.accepted and floor.bfcp is not None and floor.key_mode == "fingerprint"
    assert (floor.bfcp.stream_index, floor.bfcp.label) == (None, CONFERENCE_AUDIO_LABEL)
    local = SdpBfcpLocal("127.0.0.1", 2856, 4321, 7, ((1, floor.bfcp.label), (2, "audio")),
                         SdpFingerprint.parse(FP))  # fmt: skip
    answer = build_answer(offer, plan, local_host="127.0.0.1", ports={}, session_id=1,
                          session_version=1, bfcp_local={0: local})  # fmt: skip
    text = str(answer)
    assert "a=floorid:1 mstrm:audio\r\n" in text and "a=floorid:2 mstrm:audio\r\n" in text
    assert "a=label" not in text and "m=audio" not in text
    parsed = parse_bfcp_answer(answer, answer.media[0])
    assert parsed.floors == ((1, "audio"), (2, "audio"))


def test_without_a_bfcp_policy_a_bfcp_only_offer_is_488() -> None:
    """The focus serves no floor control: nothing acceptable is left."""
    offer = SdpSession.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=application 9 TCP/TLS/BFCP *\r\n" + GOOD
    )
    with pytest.raises(SdpRemoteError) as info:
        plan_answer(offer, SdpFocusPolicy())
    assert info.value.status == 488 and info.value.warn_code == 304
