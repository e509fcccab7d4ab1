"""ICE in SDP (RFC 8839 §5, RFC 8445 §5.1): candidates, credentials, mismatch, re-offers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from focus.sdp.ice import (
    MAX_CANDIDATES,
    SdpCandidate,
    candidate_priority,
    host_candidate,
    ice_answer_attributes,
    plan_ice,
)
from focus.sdp.session import SdpRemoteError, SdpSession

UFRAG, PWD = "F7gI", "x9cml/YzichV2+XlhiMu8g"


def offer(media: str = "", session: str = "", port: int = 5000, c: str = "192.0.2.1") -> SdpSession:
    text = (
        f"v=0\r\no=- 1 1 IN IP4 {c}\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n{session}"
        f"m=audio {port} RTP/SAVP 0\r\n{media}"
    )
    return SdpSession.parse(text)


def ice_media(*candidates: str, ufrag: str = UFRAG, pwd: str = PWD) -> str:
    lines = [f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}", *(f"a=candidate:{c}" for c in candidates)]
    return "".join(line + "\r\n" for line in lines)


HOST1 = "1 1 UDP 2130706431 192.0.2.1 5000 typ host"
HOST2 = "1 2 UDP 2130706430 192.0.2.1 5001 typ host"


def test_rfc_8839_example_candidate_round_trip() -> None:
    text = "1 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 10.0.1.1 rport 8998"
    candidate = SdpCandidate.parse(text)
    assert (candidate.foundation, candidate.component, candidate.transport) == ("1", 1, "UDP")
    assert (candidate.priority, candidate.address, candidate.port) == (
        1694498815,
        "192.0.2.3",
        45664,
    )
    assert (candidate.type, candidate.related_address, candidate.related_port) == (
        "srflx", "10.0.1.1", 8998
    )  # fmt: skip
    assert str(candidate) == text
    assert SdpCandidate.parse(str(candidate)) == candidate


def test_ipv6_and_extension_attributes() -> None:
    candidate = SdpCandidate.parse("abc+/ 2 udp 5 2001:DB8::1 9 typ host generation 0 ufrag x")
    assert (candidate.address, candidate.transport, candidate.component) == (
        "2001:db8::1",
        "UDP",
        2,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1 1 UDP 1 192.0.2.1 5000 host",  # no "typ"
        "1 1 UDP 1 192.0.2.1 5000 typ",  # no type
        "1 1 UDP 1 192.0.2.1 5000 typ bogus",
        "f-o 1 UDP 1 192.0.2.1 5000 typ host",  # foundation is ice-char only
        "1 0 UDP 1 192.0.2.1 5000 typ host",  # component 1..256
        "1 257 UDP 1 192.0.2.1 5000 typ host",
        "1 1 UDP 0 192.0.2.1 5000 typ host",  # priority 1..2^31-1
        "1 1 UDP 2147483648 192.0.2.1 5000 typ host",
        "1 1 UDP 1 192.0.2.1 0 typ host",
        "1 1 UDP 1 192.0.2.1 65536 typ host",
        "1 1 UDP 1 host.example 5000 typ host",  # FQDN: not usable here
        "1 ² UDP 1 192.0.2.1 5000 typ host",  # not an ASCII DIGIT
        "1 ١ UDP 1 192.0.2.1 5000 typ host",
        "1 1 UDP -1 192.0.2.1 5000 typ host",
    ],
)
def test_malformed_candidates_raise(text: str) -> None:
    with pytest.raises(SdpRemoteError):
        SdpCandidate.parse(text)


def test_bad_related_port_or_address_is_dropped_not_fatal() -> None:
    candidate = SdpCandidate.parse("1 1 UDP 1 192.0.2.1 5000 typ srflx raddr x.example rport ²")
    assert candidate.related_address is None and candidate.related_port is None


@given(st.text(max_size=200))
def test_any_candidate_string_parses_or_raises_sdp_remote_error(text: str) -> None:
    try:
        candidate = SdpCandidate.parse(text)
    except SdpRemoteError:
        return
    assert SdpCandidate.parse(str(candidate)) == candidate


@given(
    st.lists(
        st.sampled_from("1 2 65535 UDP typ host raddr rport ::1 192.0.2.1 srflx x ٣ 0".split()),
        max_size=14,
    )
)
def test_candidate_like_token_soup_parses_or_raises(tokens: list[str]) -> None:
    try:
        SdpCandidate.parse(" ".join(tokens))
    except SdpRemoteError:
        pass


def test_priority_formula_rfc_8445_5_1_2_1() -> None:
    assert candidate_priority(1) == (126 << 24) + (65535 << 8) + 255 == 2130706431
    assert candidate_priority(2) == 2130706430
    ours = host_candidate(1, "192.0.2.9", 40000)
    assert (ours.type, ours.transport, ours.port) == ("host", "UDP", 40000)
    assert host_candidate(2, "192.0.2.9", 40001).foundation == ours.foundation


def test_plan_reads_media_level_credentials_and_keeps_udp_candidates() -> None:
    tcp = "2 1 TCP 1 192.0.2.1 9 typ host tcptype active"
    sdp = offer(ice_media(HOST1, HOST2, tcp, "garbage"))
    plan = plan_ice(sdp, sdp.media[0], None)
    assert plan is not None and not plan.mismatch and not plan.remote_lite
    assert (plan.remote_ufrag, plan.remote_pwd) == (UFRAG, PWD)
    assert [c.component for c in plan.remote_candidates] == [1, 2] and plan.components == 2
    assert len(plan.local_ufrag) == 8 and len(plan.local_pwd) == 24
    assert plan.local_ufrag != UFRAG


def test_session_level_credentials_and_lite_media_level_wins() -> None:
    session = f"a=ice-lite\r\na=ice-ufrag:{UFRAG}\r\na=ice-pwd:{PWD}\r\n"
    sdp = offer(f"a=candidate:{HOST1}\r\n", session)
    plan = plan_ice(sdp, sdp.media[0], None)
    assert plan is not None and plan.remote_ufrag == UFRAG and plan.remote_lite
    other = "OTHERufrag"
    sdp = offer(ice_media(HOST1, ufrag=other), session)
    plan = plan_ice(sdp, sdp.media[0], None)
    assert plan is not None and plan.remote_ufrag == other  # RFC 8839 §5.4


@pytest.mark.parametrize(
    "media",
    [
        f"a=candidate:{HOST1}\r\n",  # no credentials
        ice_media(),  # no candidate
        ice_media("1 1 TCP 1 192.0.2.1 5000 typ host"),  # no UDP candidate
        ice_media(HOST1, ufrag="abc"),  # ufrag too short (4-256)
        ice_media(HOST1, pwd="short+pwd"),  # pwd too short (22-256)
        ice_media(HOST1, ufrag="bad-char"),
    ],
)
def test_no_usable_ice_means_plain_rtp(media: str) -> None:
    sdp = offer(media)
    assert plan_ice(sdp, sdp.media[0], None) is None


def test_default_destination_not_a_candidate_is_ice_mismatch() -> None:
    sdp = offer(ice_media(HOST1), port=6000)  # m= port 6000, candidate on 5000
    plan = plan_ice(sdp, sdp.media[0], None)
    assert plan is not None and plan.mismatch
    assert [str(a) for a in ice_answer_attributes(plan, "192.0.2.9", 40000, 40001)] == [
        "ice-mismatch"
    ]
    held = offer(ice_media(HOST1), port=6000, c="0.0.0.0")  # RFC 8840 placeholder
    held_plan = plan_ice(held, held.media[0], None)
    assert held_plan is not None and not held_plan.mismatch


def test_candidate_cap() -> None:
    many = [f"{i} 1 UDP {i + 1} 192.0.2.1 {5000 + i} typ host" for i in range(MAX_CANDIDATES + 10)]
    sdp = offer(ice_media(*many))
    plan = plan_ice(sdp, sdp.media[0], None)
    assert plan is not None and len(plan.remote_candidates) == MAX_CANDIDATES


def test_answer_attributes_rtcp_mux_and_two_components() -> None:
    sdp = offer(ice_media(HOST1, HOST2))
    plan = plan_ice(sdp, sdp.media[0], None)
    assert plan is not None
    two = [str(a) for a in ice_answer_attributes(plan, "192.0.2.9", 40000, 40001)]
    assert two[:2] == [f"ice-ufrag:{plan.local_ufrag}", f"ice-pwd:{plan.local_pwd}"]
    assert [SdpCandidate.parse(a.split(":", 1)[1]).port for a in two[2:]] == [40000, 40001]
    muxed = ice_answer_attributes(plan, "192.0.2.9", 40000, None)
    assert [a.name for a in muxed].count("candidate") == 1


def test_reoffer_keeps_credentials_and_new_remote_ones_restart() -> None:
    sdp = offer(ice_media(HOST1))
    first = plan_ice(sdp, sdp.media[0], None)
    again = plan_ice(sdp, sdp.media[0], first)
    assert first is not None and again is not None
    assert (again.local_ufrag, again.local_pwd) == (first.local_ufrag, first.local_pwd)
    restart = offer(ice_media(HOST1, ufrag="NEWufrag"))
    new = plan_ice(restart, restart.media[0], first)
    assert new is not None and new.local_pwd != first.local_pwd  # RFC 8839 §4.4.1.1.1
