"""SdpSession parsing and serialisation (RFC 8866)."""

from __future__ import annotations

from pathlib import Path

import pytest

from focus.sdp.session import (
    MAX_ATTRIBUTES,
    MAX_MEDIA,
    MAX_SDP_SIZE,
    SdpAttribute,
    SdpConnection,
    SdpError,
    SdpLocalError,
    SdpMedia,
    SdpOrigin,
    SdpRemoteError,
    SdpSession,
    SdpTiming,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "sdp"
POSITIVE = sorted(p.name for p in VECTORS.glob("*.sdp") if not p.name.startswith("neg_"))
HEADER = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def load(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


@pytest.mark.parametrize("name", POSITIVE)
def test_vector_round_trips_byte_for_byte(name: str) -> None:
    data = load(name)
    assert b"\r\n" in data
    session = SdpSession.parse(data)
    assert bytes(session) == data
    assert str(session) == data.decode()


@pytest.mark.parametrize("name", POSITIVE)
def test_vector_with_bare_lf_gives_the_same_tree(name: str) -> None:
    data = load(name)
    assert SdpSession.parse(data.replace(b"\r\n", b"\n")) == SdpSession.parse(data)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("neg_no_version.sdp", "SDP must start with v=0"),
        ("neg_unknown_line_type.sdp", "unknown SDP line type x="),
        ("neg_bad_mline_port.sdp", "m= port out of range: 70000"),
        ("neg_repeated_origin.sdp", "repeated session-level o= line"),
        (
            "neg_session_line_in_media.sdp",
            "t= line not allowed (or repeated) in a media description",
        ),
    ],
)
def test_negative_vectors(name: str, reason: str) -> None:
    with pytest.raises(SdpRemoteError) as info:
        SdpSession.parse(load(name))
    assert info.value.status == 400
    assert info.value.reason == reason
    assert str(info.value) == reason


def test_rfc8866_example_fields() -> None:
    session = SdpSession.parse(load("rfc8866_s5.sdp"))
    assert session.origin == SdpOrigin("jdoe", 3724394400, 3724394405, "198.51.100.1")
    assert session.name == "Call to John Smith"
    assert session.info == "SDP Offer #1"
    assert session.uri == "http://www.jdoe.example.com/home.html"
    assert session.emails == ["Jane Doe <jane@jdoe.example.com>"]
    assert session.phones == ["+1 617 555-6011"]
    assert session.connection == SdpConnection("198.51.100.1")
    assert session.timings == [SdpTiming(0, 0)]
    assert [m.mline for m in session.media] == [
        "audio 49170 RTP/AVP 0",
        "audio 49180 RTP/AVP 0",
        "video 51372 RTP/AVP 99",
    ]
    video = session.media[2]
    assert video.connections == [SdpConnection("2001:db8::2", "IP6")]
    assert session.connection_for(video) == SdpConnection("2001:db8::2", "IP6")
    assert session.connection_for(session.media[0]) == session.connection
    assert video.get_attribute("rtpmap") == SdpAttribute("rtpmap", "99 h263-1998/90000")
    assert video.get_attribute("fmtp") is None


def test_session_level_attributes_before_media_stay_session_level() -> None:
    session = SdpSession.parse(load("tshark_sip_keymgmt.sdp"))
    assert [a.name for a in session.attributes] == ["key-mgmt"]
    assert session.media[0].attributes == [SdpAttribute("rtpmap", "0 PCMU/8000")]
    assert session.get_attributes("key-mgmt") == session.attributes


def test_flag_and_empty_valued_attributes_are_distinct() -> None:
    text = HEADER + "m=audio 4000 RTP/AVP 0\r\na=rtcp-mux\r\na=x-empty:\r\n"
    media = SdpSession.parse(text).media[0]
    assert media.attributes == [SdpAttribute("rtcp-mux"), SdpAttribute("x-empty", "")]
    assert str(SdpSession.parse(text)) == text


def test_unknown_attributes_keep_their_order() -> None:
    lines = ["a=zzz:1", "a=rtpmap:0 PCMU/8000", "a=aaa", "a=x-foo:bar baz", "a=sendrecv"]
    text = HEADER + "m=audio 4000 RTP/AVP 0\r\n" + "".join(f"{x}\r\n" for x in lines)
    assert str(SdpSession.parse(text)).endswith("".join(f"{x}\r\n" for x in lines))


def test_lenient_missing_s_and_t_and_empty_s() -> None:
    session = SdpSession.parse("v=0\no=- 1 1 IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 0\n")
    assert session.name == "-"
    assert session.timings == []
    assert SdpSession.parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=\r\nt=0 0\r\n").name == ""


def test_trailing_blank_lines_are_ignored_but_inner_ones_are_not() -> None:
    session = SdpSession.parse(HEADER + "m=audio 4000 RTP/AVP 0\r\n\r\n\r\n")
    assert len(session.media) == 1
    with pytest.raises(SdpRemoteError, match="malformed SDP line"):
        SdpSession.parse(HEADER + "\r\nm=audio 4000 RTP/AVP 0\r\n")


def test_repeat_and_zone_lines() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=3034423619 3042462419\r\n"
        "r=604800 3600 0 90000\r\nz=2882844526 -1h 2898848070 0\r\n"
    )
    session = SdpSession.parse(text)
    assert session.timings[0].repeats == ["604800 3600 0 90000"]
    assert session.zone == "2882844526 -1h 2898848070 0"
    assert str(session) == text
    with pytest.raises(SdpRemoteError, match="r= without a preceding t="):
        SdpSession.parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nr=1 2 3\r\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IN IP4 224.2.36.42/127", SdpConnection("224.2.36.42", ttl=127)),
        ("IN IP4 224.2.1.1/127/3", SdpConnection("224.2.1.1", ttl=127, count=3)),
        ("IN IP6 ff15::101/3", SdpConnection("ff15::101", "IP6", count=3)),
        ("IN IP4 host.example.com", SdpConnection("host.example.com")),
    ],
)
def test_connection_forms(text: str, expected: SdpConnection) -> None:
    assert SdpConnection.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "text",
    ["IN IP4", "ATM NSAP 47.0", "IN IP5 1.2.3.4", "IN IP6 ff15::1/1/2", "IN IP4 a b", "IN IP4 x/y"],
)
def test_bad_connection(text: str) -> None:
    with pytest.raises(SdpRemoteError):
        SdpConnection.parse(text)


def test_legacy_hold_address() -> None:
    assert SdpConnection("0.0.0.0").is_hold
    assert not SdpConnection("192.0.2.1").is_hold


@pytest.mark.parametrize(
    "line",
    [
        "o=- 1 1 IN IP4",
        "o=- x 1 IN IP4 192.0.2.1",
        "o=- 1 1 IN IP4 192.0.2.1 extra",
        "o=- 1 " + "9" * 21 + " IN IP4 192.0.2.1",
    ],
)
def test_bad_origin(line: str) -> None:
    with pytest.raises(SdpRemoteError):
        SdpSession.parse(f"v=0\r\n{line}\r\ns=-\r\n")


@pytest.mark.parametrize(
    "mline",
    [
        "m=audio 4000 RTP/AVP",
        "m=audio x RTP/AVP 0",
        "m=audio 4000/x RTP/AVP 0",
        "m=a(b 1 RTP/AVP 0",
    ],
)
def test_bad_mline(mline: str) -> None:
    with pytest.raises(SdpRemoteError):
        SdpSession.parse(HEADER + mline + "\r\n")


def test_port_count_round_trips() -> None:
    text = HEADER + "m=video 49170/2 RTP/AVP 31\r\n"
    media = SdpSession.parse(text).media[0]
    assert (media.port, media.port_count) == (49170, 2)
    assert str(SdpSession.parse(text)) == text


def test_missing_origin_and_repeated_version() -> None:
    with pytest.raises(SdpRemoteError, match="without o="):
        SdpSession.parse("v=0\r\ns=-\r\n")
    with pytest.raises(SdpRemoteError, match="repeated v="):
        SdpSession.parse("v=0\r\nv=0\r\no=- 1 1 IN IP4 h\r\n")
    with pytest.raises(SdpRemoteError, match="v=0"):
        SdpSession.parse("v=1\r\no=- 1 1 IN IP4 h\r\n")
    with pytest.raises(SdpRemoteError):
        SdpSession.parse("")


def test_media_level_repeated_title_rejected() -> None:
    with pytest.raises(SdpRemoteError, match="i= line not allowed"):
        SdpSession.parse(HEADER + "m=audio 4000 RTP/AVP 0\r\ni=a\r\ni=b\r\n")


@pytest.mark.parametrize(
    "data",
    [b"v=0\r\no=- 1 1 IN IP4 h\r\ns=\xff\r\n", "v=0\r\no=- 1 1 IN IP4 h\r\ns=\ud800\r\n"],
)
def test_invalid_utf8(data: str | bytes) -> None:
    with pytest.raises(SdpRemoteError, match="UTF-8"):
        SdpSession.parse(data)


def test_utf8_session_name_round_trips() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 h\r\ns=Konferenz Müller ☎\r\n"
    assert bytes(SdpSession.parse(text.encode())) == text.encode()


def test_utf8_origin_username() -> None:
    assert SdpSession.parse("v=0\r\no=Jürgen 1 1 IN IP4 h\r\n").origin.username == "Jürgen"


def test_nul_and_lone_cr_rejected() -> None:
    for bad in ("s=a\x00b", "s=a\rb"):
        with pytest.raises(SdpRemoteError):
            SdpSession.parse(f"v=0\r\no=- 1 1 IN IP4 h\r\n{bad}\r\n")


def test_size_cap() -> None:
    filler = "a=x-pad:" + "p" * 200 + "\r\n"
    body = HEADER + filler * (MAX_SDP_SIZE // len(filler) + 1)
    with pytest.raises(SdpRemoteError, match="larger than 65536"):
        SdpSession.parse(body)
    with pytest.raises(SdpRemoteError, match="larger than 65536"):
        SdpSession.parse(b"v" * (MAX_SDP_SIZE + 1))


def test_media_cap() -> None:
    ok = HEADER + "m=audio 4000 RTP/AVP 0\r\n" * MAX_MEDIA
    assert len(SdpSession.parse(ok).media) == MAX_MEDIA
    with pytest.raises(SdpRemoteError, match="more than 32 media"):
        SdpSession.parse(ok + "m=audio 4000 RTP/AVP 0\r\n")


@pytest.mark.parametrize("media_level", [False, True])
def test_attribute_cap(media_level: bool) -> None:
    prefix = HEADER + ("m=audio 4000 RTP/AVP 0\r\n" if media_level else "")
    ok = prefix + "a=x\r\n" * MAX_ATTRIBUTES
    assert SdpSession.parse(ok)
    with pytest.raises(SdpRemoteError, match="more than 256 attributes"):
        SdpSession.parse(ok + "a=x\r\n")


def test_bad_attribute_name() -> None:
    with pytest.raises(SdpRemoteError, match="invalid attribute name"):
        SdpSession.parse(HEADER + "a=:value\r\n")


def test_build_and_serialise() -> None:
    session = SdpSession(
        origin=SdpOrigin("mrf", 7, 1, "2001:db8::1", "IP6"),
        connection=SdpConnection("2001:db8::1", "IP6"),
        timings=[SdpTiming()],
        media=[SdpMedia("audio", 40000, "RTP/SAVP", ["0"], attributes=[SdpAttribute("sendrecv")])],
    )
    text = str(session)
    assert text == (
        "v=0\r\no=mrf 7 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\n"
        "t=0 0\r\nm=audio 40000 RTP/SAVP 0\r\na=sendrecv\r\n"
    )
    assert SdpSession.parse(text) == session


def test_error_tree() -> None:
    assert issubclass(SdpLocalError, SdpError)
    assert issubclass(SdpRemoteError, SdpError)
    err = SdpRemoteError(488, "no audio")
    assert (err.status, err.reason) == (488, "no audio")
