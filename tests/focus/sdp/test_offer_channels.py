"""The dial-out offer's chat and floor control lines, and the answer rules for them.

RFC 4145 §4.1: an answer says ``active`` or ``passive`` (absent: passive, so
the offerer connects); RFC 8856 §5.1/§10.1: the focus offers ``s-only`` with
confid/userid/floorid, so the answer must be ``c-only``.  A line that fails a
rule is not opened; the audio is unaffected.
"""

from __future__ import annotations

import pytest

from focus.sdp.attributes import SdpFingerprint
from focus.sdp.bfcp import SdpBfcpLocal
from focus.sdp.msrp import SdpMsrpLocal
from focus.sdp.offer import SdpOfferState, accept_answer, build_offer
from focus.sdp.offer_answer import build_answer, plan_answer
from focus.sdp.session import SdpSession

FOCUS_PRINT = SdpFingerprint("sha-256", bytes(range(32)))
THEIR_PRINT = "sha-256 " + ":".join(f"{b:02X}" for b in bytes(range(32, 64)))


def state() -> SdpOfferState:
    chat = SdpMsrpLocal("127.0.0.1", 2855, "s3ss10n", FOCUS_PRINT)
    floor = SdpBfcpLocal("127.0.0.1", 5070, 4321, 7, ((1, "audio"),), FOCUS_PRINT)
    return build_offer(local_host="127.0.0.1", port=40000, session_id=7, msrp=chat, bfcp=floor)


def answer_text(offer: SdpOfferState, *, chat: str, floor: str) -> str:
    """Our own answerer for the audio, then the given chat and BFCP lines."""
    parsed = SdpSession.parse(bytes(offer))
    audio = build_answer(parsed, plan_answer(parsed), local_host="127.0.0.2",
                         ports={0: 20000}, session_id=1, session_version=1)  # fmt: skip
    head = str(audio).split("m=message")[0]
    return head + chat + floor


def chat_line(setup: str | None = "active", port: int = 3000, proto: str = "TCP/TLS/MSRP") -> str:
    lines = [f"m=message {port} {proto} *", "a=accept-types:message/cpim text/plain",
             f"a=path:msrps://127.0.0.2:{port}/abc;tcp", "a=msrp-cema",
             f"a=fingerprint:{THEIR_PRINT}"]  # fmt: skip
    if setup is not None:
        lines.append(f"a=setup:{setup}")
    return "\r\n".join(lines) + "\r\n"


def floor_line(setup: str | None = "active", floorctrl: str = "c-only", port: int = 9) -> str:
    lines = [f"m=application {port} TCP/TLS/BFCP *", "a=connection:new",
             f"a=fingerprint:{THEIR_PRINT}", f"a=floorctrl:{floorctrl}", "a=bfcpver:1"]  # fmt: skip
    if setup is not None:
        lines.append(f"a=setup:{setup}")
    return "\r\n".join(lines) + "\r\n"


def test_offer_lines_round_trip_with_label_and_server_attributes() -> None:
    offer = state()
    text = bytes(offer).decode()
    assert str(SdpSession.parse(text)) == text
    assert "a=label:audio\r\n" in text
    assert "m=message 2855 TCP/TLS/MSRP *\r\n" in text and "a=msrp-cema\r\n" in text
    assert "a=path:msrps://127.0.0.1:2855/s3ss10n;tcp\r\n" in text
    assert "m=application 5070 TCP/TLS/BFCP *\r\n" in text
    for attribute in ("floorctrl:s-only", "confid:4321", "userid:7", "floorid:1 mstrm:audio",
                      "bfcpver:1", f"fingerprint:{FOCUS_PRINT}"):  # fmt: skip
        assert f"a={attribute}\r\n" in text
    assert text.count("a=setup:actpass\r\n") == 2


@pytest.mark.parametrize(("setup", "we_connect"), [("active", False), ("passive", True),
                                                  (None, True)])  # fmt: skip
def test_answer_setup_decides_who_connects(setup: str | None, we_connect: bool) -> None:
    offer = state()
    text = answer_text(offer, chat=chat_line(setup), floor=floor_line(setup, port=3001))
    plan = accept_answer(offer, SdpSession.parse(text))
    audio, chat, floor = plan.streams
    assert audio.accepted and chat.accepted and floor.accepted
    assert chat.msrp is not None and chat.msrp.we_connect is we_connect
    assert chat.msrp.remote_fingerprints[0].value == bytes(range(32, 64))
    assert floor.bfcp is not None and floor.bfcp.we_connect is we_connect
    assert floor.bfcp.label == "audio" and floor.key_mode == "fingerprint"


@pytest.mark.parametrize(
    ("chat", "floor", "refused"),
    [
        (chat_line("actpass"), floor_line(), "message"),  # actpass is not an answer
        (chat_line(), floor_line("holdconn"), "application"),
        (chat_line(port=0), floor_line(), "message"),
        (chat_line(proto="TCP/MSRP"), floor_line(), "message"),  # downgraded to plain TCP
        (chat_line(), floor_line(floorctrl="s-only"), "application"),  # two servers
        (chat_line(), floor_line(floorctrl="c-s"), "application"),
        (chat_line().replace("a=fingerprint", "a=x-fingerprint"), floor_line(), "message"),
    ],
)
def test_an_unusable_side_line_is_not_opened_and_audio_stays(
    chat: str, floor: str, refused: str
) -> None:
    offer = state()
    plan = accept_answer(offer, SdpSession.parse(answer_text(offer, chat=chat, floor=floor)))
    by_kind = {s.kind: s for s in plan.streams}
    assert by_kind["audio"].accepted and by_kind["audio"].crypto is not None
    assert not by_kind[refused].accepted and by_kind[refused].reason
    assert all(s.accepted for k, s in by_kind.items() if k not in ("audio", refused))


def test_audio_only_offer_is_unchanged_without_chat_and_floor() -> None:
    offer = build_offer(local_host="127.0.0.1", port=40000, session_id=7)
    text = bytes(offer).decode()
    assert text.count("m=") == 1 and "a=label" not in text


def test_accepted_audio_names_its_codecs_for_the_mixer() -> None:
    """The mixer codes by rtpmap (``mrf.rtp.conference.participant_for``): without them a
    dialled-out participant would be silent."""
    offer = build_offer(local_host="127.0.0.1", port=40000, session_id=7)
    parsed = SdpSession.parse(bytes(offer))
    answer = build_answer(parsed, plan_answer(parsed), local_host="127.0.0.2",
                          ports={0: 20000}, session_id=1, session_version=1)  # fmt: skip
    (audio,) = accept_answer(offer, SdpSession.parse(str(answer))).streams
    assert [(m.payload_type, m.encoding, m.clock_rate) for m in audio.rtpmaps] == [
        (0, "PCMU", 8000), (8, "PCMA", 8000), (101, "telephone-event", 8000),
    ]  # fmt: skip
