"""The BFCP codec: vectors, negative vectors, stream framing, libre as an independent decoder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrf.bfcp.attribute import BfcpAttribute, BfcpErrorValue, BfcpGroup, BfcpStatus
from mrf.bfcp.codes import BfcpAttributeType as T
from mrf.bfcp.codes import BfcpErrorCode as E
from mrf.bfcp.codes import BfcpPrimitive as P
from mrf.bfcp.errors import BfcpLocalError, BfcpRemoteError
from mrf.bfcp.message import BfcpMessage, BfcpStreamParser, check_grammar

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "bfcp"
GOOD = sorted(p for p in VECTORS.glob("*.bin") if not p.name.startswith("bad_"))
BAD = {
    "bad_truncated.bin": E.INCORRECT_MESSAGE_LENGTH,
    "bad_length.bin": E.INCORRECT_MESSAGE_LENGTH,
    "bad_version.bin": E.UNSUPPORTED_VERSION,
    "bad_attribute_length.bin": E.UNABLE_TO_PARSE_MESSAGE,
    "bad_unknown_mandatory.bin": E.UNKNOWN_MANDATORY_ATTRIBUTE,
    "bad_missing_floor_id.bin": E.UNABLE_TO_PARSE_MESSAGE,
    "bad_unknown_primitive.bin": E.UNKNOWN_PRIMITIVE,
}


def test_the_oracle_sample_decodes_field_by_field() -> None:
    message = BfcpMessage.parse((VECTORS / "floorrequest_tshark.bin").read_bytes())
    assert (message.version, message.primitive, message.conference_id) == (1, P.FLOOR_REQUEST, 7)
    assert (message.transaction_id, message.user_id) == (0x1234, 0x42)
    assert message.attributes == (BfcpAttribute(T.FLOOR_ID, 1, True),)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_positive_vectors_round_trip(path: Path) -> None:
    data = path.read_bytes()
    message = BfcpMessage.parse(data)
    check_grammar(message)
    assert bytes(message) == data


@pytest.mark.parametrize("name", sorted(BAD))
def test_negative_vectors_give_the_exact_error(name: str) -> None:
    with pytest.raises(BfcpRemoteError) as caught:
        check_grammar(BfcpMessage.parse((VECTORS / name).read_bytes()))
    assert caught.value.code == BAD[name]
    assert set(BAD) <= {p.name for p in VECTORS.glob("bad_*.bin")}


def test_unknown_mandatory_details_list_the_types() -> None:
    with pytest.raises(BfcpRemoteError) as caught:
        check_grammar(BfcpMessage.parse((VECTORS / "bad_unknown_mandatory.bin").read_bytes()))
    assert caught.value.details == bytes([(100 << 1) | 1])


def test_grouped_length_counts_padded_members() -> None:
    group = BfcpGroup(5, (BfcpAttribute(T.STATUS_INFO, "abc"),))  # 5 octets + 3 padding
    data = bytes(BfcpMessage(P.FLOOR_REQUEST_STATUS, 1, 1, 1, (
        BfcpAttribute(T.FLOOR_REQUEST_INFORMATION, BfcpGroup(5, (
            BfcpAttribute(T.FLOOR_REQUEST_STATUS, group),))),)))  # fmt: skip
    assert data[12:14] == bytes([(15 << 1) | 1, 16])  # 4 + (4 + 8)
    assert data[16:18] == bytes([(17 << 1) | 1, 12])  # 4 + 8 (the member's padding counted)
    assert data[20:22] == bytes([(9 << 1) | 1, 5])  # a leaf: padding not counted


def test_encoder_refuses_misuse() -> None:
    with pytest.raises(BfcpLocalError):
        bytes(BfcpMessage(P.FLOOR_REQUEST, 1, 1, 1, (BfcpAttribute(T.FLOOR_ID, 70000),)))
    with pytest.raises(BfcpLocalError):
        bytes(BfcpMessage(P.FLOOR_REQUEST, 1, 1, 1, (BfcpAttribute(T.FLOOR_ID, "x"),)))
    with pytest.raises(BfcpLocalError):
        bytes(BfcpMessage(P.ERROR, 1, 1, 1, (BfcpAttribute(T.ERROR_INFO, "é" * 200),)))


def test_stream_parser_byte_at_a_time() -> None:
    stream = b"".join(p.read_bytes() for p in GOOD)
    parser = BfcpStreamParser()
    frames = [f for byte in stream for f in parser.feed(bytes([byte]))]
    assert frames == [p.read_bytes() for p in GOOD]
    assert parser.buffered == 0


def test_stream_parser_fails_on_a_foreign_stream() -> None:
    parser = BfcpStreamParser(max_message_size=1024)
    with pytest.raises(BfcpRemoteError) as caught:
        parser.feed(b"GET / HTTP/1.1\r\n\r\n")
    assert caught.value.fatal and caught.value.code == E.UNSUPPORTED_VERSION
    with pytest.raises(BfcpRemoteError):
        parser.feed(b"")
    big = BfcpStreamParser(max_message_size=64)
    with pytest.raises(BfcpRemoteError) as too_big:
        big.feed(bytes.fromhex("2001ffff0000000712340042"))
    assert too_big.value.code == E.INCORRECT_MESSAGE_LENGTH


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_remote_error(data: bytes) -> None:
    try:
        message = BfcpMessage.parse(data)
    except BfcpRemoteError:
        return
    try:
        check_grammar(message)
    except BfcpRemoteError:
        return
    assert BfcpMessage.parse(bytes(message)) == message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12), st.sampled_from(GOOD))
def test_stream_parser_whole_and_byte_by_byte_agree(chunks: list[bytes], vector: Path) -> None:
    data = vector.read_bytes() + b"".join(chunks)
    results = []
    for pieces in ([data], [bytes([b]) for b in data]):
        parser, frames, error = BfcpStreamParser(), [], None
        try:
            for piece in [*pieces, b""]:
                frames += parser.feed(piece)
        except BfcpRemoteError as exc:
            error = exc.code
        results.append((frames, error))
    assert results[0] == results[1]
    assert results[0][0][:1] == [vector.read_bytes()]


def _libre(codec: Path, data: bytes) -> str:
    result = subprocess.run([str(codec), "decode", data.hex()], capture_output=True, text=True,
                            timeout=30, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_libre_decodes_every_vector_as_we_do(bfcp_codec: Path, path: Path) -> None:
    message = BfcpMessage.parse(path.read_bytes())
    text = _libre(bfcp_codec, path.read_bytes())
    header = (
        f"(confid={message.conference_id} tid={message.transaction_id} userid={message.user_id})"
    )
    assert header in text
    assert "unknown mandatory attribute types:" not in text
    for attribute in message.attributes:
        assert T(attribute.type).name.replace("_", "-") in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("floorrequest", "7", "4660", "66", "1"),
         BfcpMessage(P.FLOOR_REQUEST, 7, 4660, 66, (BfcpAttribute(T.FLOOR_ID, 1),))),
        (("floorrelease", "9", "2", "3", "17"),
         BfcpMessage(P.FLOOR_RELEASE, 9, 2, 3, (BfcpAttribute(T.FLOOR_REQUEST_ID, 17),))),
        (("hello", "4294967295", "65535", "1"), BfcpMessage(P.HELLO, 0xFFFFFFFF, 65535, 1)),
    ],
)  # fmt: skip
def test_we_decode_what_libre_encodes(
    bfcp_codec: Path, args: tuple[str, ...], expected: BfcpMessage
) -> None:
    out = subprocess.run([str(bfcp_codec), *args], capture_output=True, text=True, timeout=30,
                         check=True).stdout.strip()  # fmt: skip
    message = BfcpMessage.parse(bytes.fromhex(out))
    assert message == expected and bytes(expected).hex() == out


def test_libre_sees_our_grouped_values(bfcp_codec: Path) -> None:
    status = (BfcpAttribute(T.REQUEST_STATUS, BfcpStatus(2, 3)),)
    fri = BfcpGroup(9, (
        BfcpAttribute(T.OVERALL_REQUEST_STATUS, BfcpGroup(9, status)),
        BfcpAttribute(T.FLOOR_REQUEST_STATUS, BfcpGroup(4, status)),
        BfcpAttribute(T.REQUESTED_BY_INFORMATION,
                      BfcpGroup(6, (BfcpAttribute(T.USER_URI, "sip:c@x"),))),
    ))  # fmt: skip
    message = BfcpMessage(
        P.FLOOR_REQUEST_STATUS, 1, 0, 2, (BfcpAttribute(T.FLOOR_REQUEST_INFORMATION, fri),)
    )
    text = _libre(bfcp_codec, bytes(message))
    assert "floor-request-id=9" in text and "floor-id=4" in text
    assert "Accepted (2), qpos=3" in text and '"sip:c@x"' in text
    error = BfcpMessage(P.ERROR, 1, 3, 2, (BfcpAttribute(T.ERROR_CODE, BfcpErrorValue(5)),))
    assert "5 (Unauthorized Operation)" in _libre(bfcp_codec, bytes(error))
