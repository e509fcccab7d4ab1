"""Property tests: arbitrary or mutated input either parses or raises SipRemoteError."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from focus.sip.headers import SipRemoteError
from focus.sip.message import (
    SipRequest,
    SipStreamParser,
    make_response,
    parse_message,
    validate_request,
)
from focus.sip.uri import SipNameAddr, SipUri

VECTORS = Path(__file__).parents[2] / "vectors" / "sip"
SEEDS = [path.read_bytes() for path in sorted(VECTORS.glob("*.txt"))]
SIP_BYTES = st.sampled_from(list(b'\r\n :;,<>"\\@%=/[]?&SIP2.0 \tvVlLtf') + [0, 0x80, 0xFF])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.one_of(SIP_BYTES, st.integers(0, 255)))
        if action == "insert":
            data.insert(position, byte)
        elif position < len(data):
            if action == "delete":
                del data[position]
            else:
                data[position] = byte
    return bytes(data)


def exercise(data: bytes) -> None:
    """Parse and touch every lazy accessor; only SipRemoteError may escape."""
    try:
        message = parse_message(data)
    except SipRemoteError:
        return
    for accessor in ("call_id", "cseq", "vias", "from_addr", "to_addr", "content_type"):
        try:
            getattr(message, accessor)
        except SipRemoteError:
            pass
    assert bytes(message)
    if isinstance(message, SipRequest):
        try:
            validate_request(message, allowed_methods={"INVITE"}, accepted_content_types=())
            make_response(message, 200, to_tag="t")
        except SipRemoteError:
            pass
        for value in message.headers.get_all("Contact"):
            try:
                SipNameAddr.parse(value)
            except SipRemoteError:
                pass


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    exercise(data)


@FUZZ
@given(mutated())
def test_mutated_vectors(data: bytes) -> None:
    exercise(data)


@FUZZ
@given(st.text(max_size=80))
def test_uri_and_name_addr_text(text: str) -> None:
    for parse in (SipUri.parse, SipNameAddr.parse):
        try:
            value = parse(text)
        except SipRemoteError:
            continue
        assert str(value)


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(st.integers(1, 64), max_size=20))
def test_stream_chunking_does_not_matter(data: bytes, cuts: list[int]) -> None:
    whole = SipStreamParser()
    try:
        expected = [bytes(m) for m in whole.feed(data)]
    except SipRemoteError:
        return
    parser = SipStreamParser()
    got: list[bytes] = []
    position = 0
    for size in [*cuts, len(data)]:
        got += [bytes(m) for m in parser.feed(data[position : position + size])]
        position += size
    assert got == expected


@FUZZ
@given(st.lists(st.one_of(mutated(), st.binary(max_size=64)), max_size=4))
def test_stream_arbitrary_input(chunks: list[bytes]) -> None:
    parser = SipStreamParser(max_message_size=4096)
    try:
        for chunk in chunks:
            for message in parser.feed(chunk):
                assert bytes(message)
    except SipRemoteError:
        pass
