"""MSRP framing: vectors (tests/vectors/msrp), byte-at-a-time, round trips, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrf.msrp.errors import MsrpLocalError, MsrpRemoteError
from mrf.msrp.message import MsrpByteRange, MsrpRequest, MsrpResponse, new_ident
from mrf.msrp.parser import MsrpStreamParser, parse_one
from mrf.msrp.uri import MsrpUri, parse_path

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "msrp"
POSITIVE = sorted(p for p in VECTORS.glob("*.txt") if not p.name.startswith("neg_"))


def feed_bytewise(data: bytes) -> list[MsrpRequest | MsrpResponse]:
    parser = MsrpStreamParser(piece_size=1 << 20)
    out: list[MsrpRequest | MsrpResponse] = []
    for index in range(len(data)):
        out += parser.feed(data[index : index + 1])
    return out


@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.name)
def test_positive_vectors_round_trip_whole_and_bytewise(path: Path) -> None:
    data = path.read_bytes()
    message = parse_one(data)
    assert bytes(message) == data
    (bytewise,) = feed_bytewise(data)
    assert bytes(bytewise) == data


def test_rfc4975_send_fields() -> None:
    message = parse_one((VECTORS / "rfc4975_s7_2_send.txt").read_bytes())
    assert isinstance(message, MsrpRequest)
    assert message.method == "SEND" and message.transaction_id == "a786hjs2"
    assert message.body == b"Hey Bob, are you there?"
    assert message.message_id == "87652491"
    assert message.byte_range == MsrpByteRange(1, 25, 25)
    assert message.to_path[0].session_id == "kjhd37s2s20w2a"
    assert message.failure_report == "yes" and not message.success_report


def test_response_fields() -> None:
    message = parse_one((VECTORS / "rfc4975_s7_2_response.txt").read_bytes())
    assert isinstance(message, MsrpResponse)
    assert (message.status, message.comment) == (200, "OK")


def test_chunks_and_report() -> None:
    first = parse_one((VECTORS / "rfc4975_s11_chunk1.txt").read_bytes())
    second = parse_one((VECTORS / "rfc4975_s11_chunk2.txt").read_bytes())
    assert isinstance(first, MsrpRequest) and isinstance(second, MsrpRequest)
    assert (first.flag, second.flag) == ("+", "$")
    assert first.body + second.body == b"Hi Bob, in two chunks of a message"
    report = parse_one((VECTORS / "rfc4975_s11_report.txt").read_bytes())
    assert isinstance(report, MsrpRequest) and report.header("Status") == "000 200 OK"


def test_back_to_back_frames_in_one_feed() -> None:
    data = b"".join(p.read_bytes() for p in POSITIVE)
    assert len(MsrpStreamParser().feed(data)) == len(POSITIVE)


def test_end_line_of_another_transaction_never_ends_the_frame() -> None:
    parser = MsrpStreamParser()
    assert parser.feed((VECTORS / "neg_end_line_mismatch.txt").read_bytes()) == []


@pytest.mark.parametrize(
    ("name", "status"), [("neg_paths_order.txt", 400), ("neg_bad_start.txt", 400)]
)
def test_negative_vectors(name: str, status: int) -> None:
    with pytest.raises(MsrpRemoteError) as info:
        parse_one((VECTORS / name).read_bytes())
    assert info.value.status == status


def test_large_body_is_handed_over_in_pieces() -> None:
    a, b = parse_path("msrps://127.0.0.1:1/a1;tcp"), parse_path("msrps://127.0.0.1:2/b2;tcp")
    body = bytes(range(256)) * 1000
    request = MsrpRequest(new_ident(), "SEND", a, b, [("Message-ID", "abcd"),
                          ("Content-Type", "application/octet-stream")], body)  # fmt: skip
    parser = MsrpStreamParser(piece_size=4096)
    pieces = [
        m
        for i in range(0, len(bytes(request)), 3000)
        for m in parser.feed(bytes(request)[i : i + 3000])
    ]
    assert all(isinstance(p, MsrpRequest) for p in pieces) and len(pieces) > 10
    assert b"".join(p.body for p in pieces if isinstance(p, MsrpRequest)) == body
    assert [p.complete for p in pieces if isinstance(p, MsrpRequest)][-1] is True
    offsets = [p.body_offset for p in pieces if isinstance(p, MsrpRequest)]
    assert offsets == sorted(offsets) and offsets[0] == 0


def test_serializer_refuses_an_end_line_inside_the_body() -> None:
    a = parse_path("msrps://127.0.0.1:1/a1;tcp")
    request = MsrpRequest("abcd1234", "SEND", a, a, [("Content-Type", "text/plain")],
                          b"x\r\n-------abcd1234$\r\n")  # fmt: skip
    with pytest.raises(MsrpLocalError):
        bytes(request)


def test_uri_comparison_rfc4975_s6_1() -> None:
    one = MsrpUri.parse("MSRPS://Alice@Example.COM:2855/AbC;TCP")
    assert one == MsrpUri.parse("msrps://example.com:2855/AbC;tcp")
    assert one != MsrpUri.parse("msrps://example.com:2855/abc;tcp")  # session-id case-sensitive
    assert one != MsrpUri.parse("msrps://example.com:2856/AbC;tcp")
    assert MsrpUri.parse("msrp://[::1]:1/x;tcp").host == "::1"
    with pytest.raises(MsrpRemoteError):
        MsrpUri.parse("http://example.com/x;tcp")


@pytest.mark.parametrize("text", ["0-5/5", "3-1/5", "1-9/5", "a-b/c"])
def test_bad_byte_ranges(text: str) -> None:
    with pytest.raises(MsrpRemoteError):
        MsrpByteRange.parse(text)
