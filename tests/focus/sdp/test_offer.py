"""The focus as SDES offerer (dial-out): offer shape, key freshness, answer checks."""

from __future__ import annotations

import base64

import pytest

from focus.sdp.offer import accept_answer, build_offer
from focus.sdp.offer_answer import build_answer, plan_answer
from focus.sdp.session import SdpRemoteError, SdpSession


def offer_state(**kwargs: object):  # type: ignore[no-untyped-def]
    return build_offer(local_host="127.0.0.1", port=40000, session_id=7, **kwargs)  # type: ignore[arg-type]


def test_offer_has_one_fresh_key_per_suite_and_round_trips() -> None:
    state = offer_state()
    text = str(state.offer)
    parsed = SdpSession.parse(text)
    assert str(parsed) == text
    media = parsed.media[0]
    assert (media.kind, media.port, media.proto) == ("audio", 40000, "RTP/SAVP")
    assert media.formats == ["0", "8", "101"]
    lines = [a.value for a in media.get_attributes("crypto")]
    assert [line.split()[1] for line in lines] == [  # type: ignore[union-attr]
        "AES_CM_128_HMAC_SHA1_80",
        "AES_CM_128_HMAC_SHA1_32",
        "AEAD_AES_128_GCM",
        "AEAD_AES_256_GCM",
    ]
    keys = [base64.b64decode(line.split("inline:")[1]) for line in lines]  # type: ignore[union-attr]
    assert [len(k) for k in keys] == [30, 30, 28, 44]
    assert len(set(keys)) == 4
    assert offer_state().keys[1][1] != state.keys[1][1]  # every offer draws new keys


def test_answer_from_our_own_answerer_gives_crossed_keys() -> None:
    state = offer_state()
    # the other side answers with our own offer/answer code (RFC 4568 §5.1.2)
    their_plan = plan_answer(SdpSession.parse(bytes(state)))
    answer = build_answer(SdpSession.parse(bytes(state)), their_plan, local_host="127.0.0.2",
                          ports={0: 20000}, session_id=1, session_version=1)  # fmt: skip
    plan = accept_answer(state, SdpSession.parse(str(answer)))
    (stream,) = plan.accepted
    theirs = their_plan.streams[0].crypto
    assert stream.crypto is not None and theirs is not None
    assert stream.crypto.tag == 1 and stream.crypto.suite == "AES_CM_128_HMAC_SHA1_80"
    assert stream.crypto.remote_key_salt == theirs.local_key_salt
    assert stream.crypto.local_key_salt == theirs.remote_key_salt == state.keys[1][1]
    assert (stream.remote_host, stream.remote_port) == ("127.0.0.2", 20000)
    assert stream.payload_types == [0, 8] and stream.telephone_event_pt == 101


ANSWER = (
    "v=0\r\no=bob 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
    "m=audio {port} {proto} 0 101\r\n{crypto}a=sendrecv\r\n"
)
KEY = base64.b64encode(bytes(30)).decode()


@pytest.mark.parametrize(
    ("port", "proto", "crypto", "reason"),
    [
        (0, "RTP/SAVP", "", "rejected the audio"),
        (20000, "RTP/AVP", "", "downgraded"),
        (20000, "RTP/SAVP", "", "exactly one a=crypto"),
        (20000, "RTP/SAVP", f"a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n", "not offered"),
        (20000, "RTP/SAVP", f"a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\n", "not offered"),
    ],
)
def test_bad_answers_are_refused(port: int, proto: str, crypto: str, reason: str) -> None:
    answer = SdpSession.parse(ANSWER.format(port=port, proto=proto, crypto=crypto))
    with pytest.raises(SdpRemoteError) as caught:
        accept_answer(offer_state(), answer)
    assert caught.value.status == 488 and reason in caught.value.reason


def test_answer_direction_maps_to_ours() -> None:
    text = ANSWER.format(port=20000, proto="RTP/SAVP",
                         crypto=f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n")  # fmt: skip
    plan = accept_answer(offer_state(), SdpSession.parse(text.replace("sendrecv", "recvonly")))
    assert plan.streams[0].direction_answer == "sendonly" and plan.streams[0].on_hold
